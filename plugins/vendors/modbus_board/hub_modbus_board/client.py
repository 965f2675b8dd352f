"""One Modbus TCP connection per endpoint, and the failures it can end in, classified.

pymodbus reports a refused connect as a bare `False` and a timeout as a generic I/O error; the
hub needs to know which failures are worth retrying and the reason in words an operator reads.
"""
from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from hub_modbus_board.addressing import Endpoint
from hub_modbus_board.registers import MAX_READ, MAX_WRITE, chunks

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    7: "negative acknowledge",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
# Codes that say "not now" rather than "never": the device is busy, or a gateway could not
# reach the unit behind it. Retrying those is what the hub's backoff is for.
TRANSIENT_EXCEPTIONS = frozenset({5, 6, 10, 11})


class ModbusFault(Exception):
    """Why a request got no usable answer. `transient`: whether trying again later may help."""

    transient = True


class LinkDown(ModbusFault):
    """No TCP connection to the endpoint: nothing behind it can be reached in this attempt."""


class NoResponse(ModbusFault):
    """The request went out and nothing came back in time."""


class LinkLost(ModbusFault):
    """The endpoint closed the connection during the request."""


class DeviceException(ModbusFault):
    """The device answered with a Modbus exception response."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.transient = code in TRANSIENT_EXCEPTIONS


def exception_name(code: int) -> str:
    return f"Modbus exception {code} ({EXCEPTION_NAMES.get(code, 'unknown code')})"


class _TcpClient(ModbusTcpClient):
    """Keeps the OSError of a failed connect, which the stock client only logs."""

    connect_error: OSError | None = None

    def connect(self) -> bool:
        if self.socket is not None:
            return True
        try:
            sock = socket.create_connection((self.comm_params.host, self.comm_params.port),
                                            timeout=self.comm_params.timeout_connect)
        except OSError as exc:
            self.connect_error = exc
            return False
        # Requests are a few bytes each and strictly request/response: never wait for Nagle.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connect_error = None
        self.socket = sock
        return True


def _connect_reason(exc: OSError | None, timeout: float) -> str:
    if isinstance(exc, TimeoutError) or (exc is not None and exc.errno == errno.ETIMEDOUT):
        return f"connect timeout after {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if exc is None:
        return "connect failed"
    return exc.strerror or str(exc)


class Connection:
    """The client of one endpoint. Hold `lock` (via `session()`) for a run of requests: one
    Modbus TCP connection carries one request at a time."""

    def __init__(self, endpoint: Endpoint, timeout_s: float, retries: int) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.retries = retries
        self.lock = threading.Lock()
        self._client = _TcpClient(endpoint.host, port=endpoint.port, timeout=timeout_s, retries=retries,
                                  name=f"modbus_board {endpoint}")
        self._reused = False  # the socket predates this session: the device may have dropped it
        self.last_error: str | None = None

    @contextmanager
    def session(self) -> Iterator[Connection]:
        with self.lock:
            self._reused = self._client.connected
            yield self

    def connect(self) -> None:
        if not self._client.connect():
            self.last_error = f"{self.endpoint}: {_connect_reason(self._client.connect_error, self.timeout_s)}"
            raise LinkDown(self.last_error)

    def close(self) -> None:
        self._client.close()

    # -- requests --------------------------------------------------------------------------------

    def read_holding(self, unit: int, first: int, count: int) -> list[int]:
        return self._read("HR", unit, first, count)

    def read_input(self, unit: int, first: int, count: int) -> list[int]:
        return self._read("IR", unit, first, count)

    def write(self, unit: int, first: int, values: list[int]) -> None:
        for address, n in chunks(first, len(values), MAX_WRITE):
            part = values[address - first:address - first + n]
            what = f"writing HR {address}" + (f"-{address + n - 1}" if n > 1 else "")
            if n == 1:
                self._call(unit, what, lambda a=address, v=part[0]: self._client.write_register(a, v, device_id=unit))
            else:
                self._call(unit, what, lambda a=address, v=part: self._client.write_registers(a, v, device_id=unit))

    def _read(self, table: str, unit: int, first: int, count: int) -> list[int]:
        out: list[int] = []
        fn = self._client.read_holding_registers if table == "HR" else self._client.read_input_registers
        for address, n in chunks(first, count, MAX_READ):
            what = f"reading {table} {address}" + (f"-{address + n - 1}" if n > 1 else "")
            rr = self._call(unit, what, lambda a=address, c=n: fn(a, count=c, device_id=unit))
            regs = list(getattr(rr, "registers", None) or [])
            if len(regs) != n:
                self.close()  # the stream may be out of step; start clean
                raise LinkLost(f"{self.endpoint}/{unit}: {len(regs)} registers in the answer {what}, expected {n}")
            out.extend(regs)
        return out

    def _call(self, unit: int, what: str, request: Callable[[], Any]) -> Any:
        where = f"{self.endpoint}/{unit}"
        for attempt in (1, 2):
            self.connect()
            try:
                rr = request()
            except ModbusIOException:
                # A late answer would otherwise be read as the answer to the next request.
                self.close()
                sent = f", sent {self.retries + 1} times" if self.retries else ""
                self.last_error = f"{where}: no response within {self.timeout_s:g} s (timeout{sent}) {what}"
                raise NoResponse(self.last_error) from None
            except (ConnectionException, OSError) as exc:  # pymodbus lets a reset socket's OSError through
                self.close()
                if attempt == 1 and self._reused:
                    # Controllers drop idle connections; the first request after a pause finds
                    # out. Writes here are setpoints, so sending one again is harmless.
                    self._reused = False
                    continue
                self.last_error = f"{where}: connection lost {what} ({exc})"
                raise LinkLost(self.last_error) from None
            except ModbusException as exc:
                self.close()
                self.last_error = f"{where}: {exc} {what}"
                raise LinkLost(self.last_error) from None
            self._reused = False
            if rr is None:
                raise LinkLost(f"{where}: no answer object {what}")
            if rr.isError():
                code = int(getattr(rr, "exception_code", 0))
                raise DeviceException(code, f"{exception_name(code)} {what} of {where}")
            self.last_error = None
            return rr
        raise AssertionError("unreachable")  # pragma: no cover


class Connections:
    """Connections by endpoint, created on first use and kept until `close()`."""

    def __init__(self, timeout_s: float, retries: int) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self._by_endpoint: dict[Endpoint, Connection] = {}
        self._lock = threading.Lock()

    def get(self, endpoint: Endpoint) -> Connection:
        with self._lock:
            conn = self._by_endpoint.get(endpoint)
            if conn is None:
                conn = self._by_endpoint[endpoint] = Connection(endpoint, self.timeout_s, self.retries)
            return conn

    def errors(self) -> dict[str, str]:
        """The endpoints whose last request failed, with why."""
        with self._lock:
            conns = list(self._by_endpoint.values())
        return {str(c.endpoint): c.last_error for c in conns if c.last_error}

    def __len__(self) -> int:
        return len(self._by_endpoint)

    def close(self) -> None:
        with self._lock:
            conns, self._by_endpoint = list(self._by_endpoint.values()), {}
        for conn in conns:
            # A request still running holds the lock; closing under it would pull the socket
            # from under pymodbus. Wait for it, but never for ever.
            if conn.lock.acquire(timeout=conn.timeout_s * 4 + 1):
                try:
                    conn.close()
                finally:
                    conn.lock.release()
            else:
                conn.close()
