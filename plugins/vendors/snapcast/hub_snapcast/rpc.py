"""Snapserver's control API: newline-delimited JSON-RPC 2.0 over one TCP connection.

One reader thread per connection matches responses to requests by id and hands notifications
to a callback, so a single connection serves both commands and listening. Imports nothing from
`hub`: the lab and the simulator use it too.
"""
from __future__ import annotations

import itertools
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Params = dict[str, Any] | None
OnNotification = Callable[[str, dict[str, Any]], None]
OnLost = Callable[[str], None]


class RpcError(Exception):
    """snapserver answered a request with a JSON-RPC error object."""

    def __init__(self, method: str, code: Any, message: str, data: Any = None) -> None:
        self.method, self.code, self.message, self.data = method, code, message, data
        # snapserver 0.26 puts the specific reason ("Client not found") in `data` and a generic
        # "Internal error" in `message`; the specific one is what an operator needs to read.
        detail = data if isinstance(data, str) and data else message
        super().__init__(f"{method}: {detail} (JSON-RPC error {code})")

    @property
    def detail(self) -> str:
        return self.data if isinstance(self.data, str) and self.data else self.message


class ConnectionLost(ConnectionError):
    """The control connection closed or broke while requests were outstanding."""


@dataclass
class Reply:
    method: str
    params: Params
    result: Any = None
    error: RpcError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class _Waiter:
    __slots__ = ("event", "message", "lost")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.message: dict[str, Any] | None = None
        self.lost: str | None = None


class RpcConnection:
    """Connect with `connect()`; then `call`/`batch` from any thread; `close()` once."""

    def __init__(self, host: str, port: int, timeout: float, *, on_notification: OnNotification | None = None,
                 on_lost: OnLost | None = None) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._on_notification = on_notification
        self._on_lost = on_lost
        self._sock: socket.socket | None = None
        self._ids = itertools.count(1)
        self._waiters: dict[int, _Waiter] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._alive = False
        self._closing = False
        self._reader: threading.Thread | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def alive(self) -> bool:
        return self._alive

    def connect(self) -> None:
        """Open the TCP connection (OSError when snapserver is not there)."""
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        # The timeout bounds sendall to a wedged server; the reader treats it as "no data yet"
        # (close() shuts the socket down, which wakes a reader blocked in recv at once).
        sock.settimeout(self.timeout)
        self._sock = sock
        self._alive = True
        self._reader = threading.Thread(target=self._read_loop, name=f"snapcast-rpc-{self.where}", daemon=True)
        self._reader.start()

    def close(self) -> None:
        self._closing = True
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(2)
        self._lost("connection closed by the hub")

    # -- requests --------------------------------------------------------------------------

    def call(self, method: str, params: Params = None, timeout: float | None = None) -> Any:
        """The result of one request; RpcError, ConnectionLost or TimeoutError otherwise."""
        [reply] = self.batch([(method, params)], timeout)
        if reply.error is not None:
            raise reply.error
        return reply.result

    def batch(self, calls: Sequence[tuple[str, Params]], timeout: float | None = None) -> list[Reply]:
        """Send `calls` as one JSON-RPC batch (a single request goes as a plain object) and
        return one Reply per call, in order. JSON-RPC errors are in the replies; a broken
        connection raises ConnectionLost and a silent server TimeoutError."""
        if not calls:
            return []
        requests, waiters = [], []
        with self._lock:
            if not self._alive:
                raise ConnectionLost(f"not connected to snapserver {self.where}")
            for method, params in calls:
                rid = next(self._ids)
                req: dict[str, Any] = {"id": rid, "jsonrpc": "2.0", "method": method}
                if params is not None:
                    req["params"] = params
                w = _Waiter()
                self._waiters[rid] = w
                requests.append(req)
                waiters.append((rid, w))
        body = requests[0] if len(requests) == 1 else requests
        try:
            self._send(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
            limit = self.timeout if timeout is None else timeout
            deadline = time.monotonic() + limit
            replies = []
            for (rid, w), (method, params) in zip(waiters, calls, strict=True):
                if not w.event.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"snapserver {self.where} did not answer {method} within {limit:g}s")
                if w.lost is not None:
                    raise ConnectionLost(w.lost)
                replies.append(_reply(method, params, w.message or {}))
            return replies
        finally:
            with self._lock:
                for rid, _ in waiters:
                    self._waiters.pop(rid, None)

    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            raise ConnectionLost(f"not connected to snapserver {self.where}")
        with self._send_lock:
            try:
                sock.sendall(data)
            except TimeoutError:
                self._lost("snapserver stopped reading requests")
                raise TimeoutError(f"snapserver {self.where} stopped reading requests") from None
            except OSError as exc:
                self._lost(f"send failed: {exc}")
                raise ConnectionLost(f"connection to snapserver {self.where} broke: {exc}") from exc

    # -- reading ---------------------------------------------------------------------------

    def _read_loop(self) -> None:
        sock = self._sock
        assert sock is not None
        buf = b""
        why = "snapserver closed the connection"
        while not self._closing:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                why = f"connection broke: {exc}"
                break
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    self._dispatch(line)
        self._lost(why)

    def _dispatch(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            log.warning("snapserver %s sent a line that is not JSON: %r", self.where, line[:200])
            return
        for item in message if isinstance(message, list) else [message]:
            if not isinstance(item, dict):
                continue
            if "method" in item and "id" not in item:
                self._notify(item)
                continue
            rid = item.get("id")
            with self._lock:
                w = self._waiters.get(rid) if isinstance(rid, int) else None
            if w is None:
                log.debug("snapserver %s answered an unknown request id %r", self.where, rid)
                continue
            w.message = item
            w.event.set()

    def _notify(self, item: dict[str, Any]) -> None:
        if self._on_notification is None:
            return
        params = item.get("params")
        try:
            self._on_notification(str(item["method"]), params if isinstance(params, dict) else {})
        except Exception:  # noqa: BLE001 - a faulty handler must not stop the reader
            log.exception("snapcast notification handler failed on %s", item.get("method"))

    def _lost(self, why: str) -> None:
        with self._lock:
            if not self._alive:
                return
            self._alive = False
            waiting = list(self._waiters.values())
        for w in waiting:
            w.lost = f"connection to snapserver {self.where} lost: {why}"
            w.event.set()
        if self._on_lost is not None and not self._closing:
            try:
                self._on_lost(why)
            except Exception:  # noqa: BLE001
                log.exception("snapcast on_lost handler failed")


def _reply(method: str, params: Params, message: dict[str, Any]) -> Reply:
    if "error" in message:
        err = message["error"] if isinstance(message["error"], dict) else {}
        return Reply(method, params, error=RpcError(method, err.get("code"), str(err.get("message", "error")),
                                                    err.get("data")))
    return Reply(method, params, result=message.get("result"))
