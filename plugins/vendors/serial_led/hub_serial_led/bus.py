"""An RS-485 line behind a serial port (or a serial-over-TCP converter): one request frame,
one reply, one at a time. Imports nothing from `hub`.

A bus is half-duplex and physical, so it is shared per process, not per adapter: the worker's
adapter and the ingest's poller in one process must take turns on the same port object, or the
poller would read the replies meant for the sender. `BUSES` hands out one `Bus` per port URL,
reference-counted. Processes on one host take turns through an flock on a lock file per URL.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

import serial

from hub_serial_led.frame import Frame, FrameError, FrameReader, encode_frame

log = logging.getLogger(__name__)

READ_QUANTUM_S = 0.02  # how long one read() may block; bounds how late a deadline is noticed
# pyserial's other URL handlers read or write files (spy://…?file=), loop back, or search for
# ports (hwgrep://, alt://): a bus is a device path or a serial-over-TCP converter, nothing else.
URL_SCHEMES = ("socket",)


class BusError(Exception):
    """A transaction failed in a way worth retrying; the message is the delivery's reason."""

    transient = True


class PortUnavailable(BusError):
    """The port cannot be opened or failed mid-transaction (converter down, cable pulled)."""


class NoReply(BusError):
    """No complete reply frame before the deadline."""


class CorruptReply(BusError):
    """A reply arrived but its checksum, length or escaping is wrong (line noise)."""


class WrongBoard(BusError):
    """The reply came from another board than the one addressed."""


@dataclass(frozen=True)
class PortSettings:
    baudrate: int = 9600
    keep_open: bool = True
    lock_dir: str | None = None


class _FileLock:
    """An flock per port URL, so that worker and ingest processes on one host never put two
    frames on the line at once. Degrades to no cross-process lock if the file cannot be made."""

    def __init__(self, url: str, lock_dir: str | None) -> None:
        base = lock_dir or os.path.join(tempfile.gettempdir(), "hub-serial-led")
        tail = re.sub(r"[^A-Za-z0-9]+", "_", url)[-40:].strip("_")
        self.path = os.path.join(base, f"{tail}-{hashlib.sha1(url.encode()).hexdigest()[:12]}.lock")
        self._fd: int | None = None
        self._broken = False

    def __enter__(self) -> None:
        if self._broken:
            return
        if self._fd is None:
            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                self._broken = True
                log.warning("serial_led: no cross-process bus lock (%s); only this process is serialised", exc)
                return
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Bus:
    """One port URL. `transact` is the only way to talk on it and holds the bus meanwhile."""

    def __init__(self, url: str, settings: PortSettings) -> None:
        self.url = url
        self.settings = settings
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._file_lock = _FileLock(url, settings.lock_dir)
        self._port: Any = None
        self._closed = False
        self._refs = 0
        self._boards: dict[int, str] = {}
        self._boards_lock = threading.Lock()

    # -- boards seen on this line (what the status poller visits) ---------------------------
    def remember(self, board: int, address: str) -> None:
        with self._boards_lock:
            self._boards[board] = address

    def boards(self) -> dict[int, str]:
        with self._boards_lock:
            return dict(self._boards)

    # -- the one transaction ----------------------------------------------------------------
    def transact(self, request: Frame, timeout_s: float, gap_s: float = 0.0) -> Frame:
        """Send `request` and return the reply of the addressed board, checksum verified.
        Raises a BusError subclass whose message says what went wrong."""
        data = encode_frame(request)
        with self._lock, self._file_lock:
            if self._closed:
                raise PortUnavailable(f"serial port {self.url} was closed")
            port = self._open()
            try:
                self._ensure_write_timeout(port, len(data))
                # A late reply to an earlier, timed-out request must not pass for this one's.
                port.reset_input_buffer()
                port.write(data)
                port.flush()
                reply = self._read_reply(port, request, timeout_s)
                self.last_error = None
                return reply
            except (serial.SerialException, OSError) as exc:
                self._drop()
                self.last_error = f"serial port {self.url} failed: {exc}"
                raise PortUnavailable(self.last_error) from exc
            finally:
                if gap_s > 0:  # boards need a quiet line between frames; hold it while quiet
                    time.sleep(gap_s)
                if not self.settings.keep_open:
                    self._drop()

    def _open(self) -> Any:
        if self._port is None:
            scheme = self.url.partition("://")[0].lower() if "://" in self.url else None
            if scheme is not None and scheme not in URL_SCHEMES:
                self.last_error = f"serial port {self.url}: URL scheme {scheme}:// is refused"
                raise PortUnavailable(self.last_error)
            try:
                self._port = serial.serial_for_url(self.url, baudrate=self.settings.baudrate, timeout=READ_QUANTUM_S,
                                                   write_timeout=2.0)
            except (serial.SerialException, OSError, ValueError) as exc:
                self.last_error = f"serial port {self.url} unavailable: {exc}"
                raise PortUnavailable(self.last_error) from exc
        return self._port

    def _ensure_write_timeout(self, port: Any, nbytes: int) -> None:
        # Long texts at 9600 baud take seconds to clock out; a stuck port must still fail.
        need = 1.0 + 2 * nbytes * 10 / self.settings.baudrate
        if port.write_timeout is None or port.write_timeout < need:
            port.write_timeout = need

    def _read_reply(self, port: Any, request: Frame, timeout_s: float) -> Frame:
        reader = FrameReader()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            chunk = port.read(port.in_waiting or 1)
            for item in reader.feed(chunk):
                if isinstance(item, FrameError):
                    raise CorruptReply(f"corrupt reply frame: {item}")
                if item == request:  # 2-wire adapters without echo suppression hear themselves
                    continue
                if item.address != request.address:
                    raise WrongBoard(f"reply from board {item.address}, expected {request.address}")
                return item
        if reader.in_frame:
            raise NoReply(f"incomplete reply frame within {timeout_s:g} s ({reader.pending} bytes)")
        if reader.stray:
            raise NoReply(f"no reply within {timeout_s:g} s ({reader.stray} stray bytes)")
        raise NoReply(f"no reply within {timeout_s:g} s")

    def _drop(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception:  # noqa: BLE001 - a port that failed may fail to close too
                pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop()
            self._file_lock.close()


class BusRegistry:
    """One Bus per port URL in this process, alive while anyone holds it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buses: dict[str, Bus] = {}

    def acquire(self, url: str, settings: PortSettings) -> Bus:
        with self._lock:
            bus = self._buses.get(url)
            if bus is None:
                bus = self._buses[url] = Bus(url, settings)
            elif bus.settings != settings:
                log.warning("serial_led: %s is already open with %s; ignoring %s", url, bus.settings, settings)
            bus._refs += 1
            return bus

    def release(self, bus: Bus) -> None:
        with self._lock:
            bus._refs -= 1
            if bus._refs > 0:
                return
            if self._buses.get(bus.url) is bus:
                del self._buses[bus.url]
        bus.close()

    def live(self) -> list[Bus]:
        """Every bus in use, each acquired once for the caller, who must release them."""
        with self._lock:
            buses = list(self._buses.values())
            for bus in buses:
                bus._refs += 1
            return buses

    def urls(self) -> list[str]:
        with self._lock:
            return sorted(self._buses)


BUSES = BusRegistry()
