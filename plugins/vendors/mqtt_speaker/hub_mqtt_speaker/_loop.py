"""A minimal single-threaded event loop: sockets via `selectors`, timers, calls from other threads.

The simulator drives hundreds of paho clients from one thread with it. asyncio would do, but
paho's manual-loop API is synchronous and this keeps the moving parts visible.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE


class TimerHandle:
    __slots__ = ("when", "seq", "fn", "cancelled")

    def __init__(self, when: float, seq: int, fn: Callable[[], None]) -> None:
        self.when, self.seq, self.fn, self.cancelled = when, seq, fn, False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: TimerHandle) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


class EventLoop:
    def __init__(self, name: str = "event-loop") -> None:
        self.name = name
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, READ, None)
        self._calls: deque[Callable[[], None]] = deque()
        self._timers: list[TimerHandle] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._halt = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._halt = True
        self._wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if not thread.is_alive():
                self._thread = None

    def close(self) -> None:
        for key in list(self._sel.get_map().values()):
            if key.fileobj is not self._wake_r:
                try:
                    key.fileobj.close()  # type: ignore[union-attr]
                except OSError:
                    pass
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def in_loop(self) -> bool:
        return self._thread is threading.current_thread()

    # -- scheduling ----------------------------------------------------------------------

    def call_soon_threadsafe(self, fn: Callable[[], None]) -> None:
        self._calls.append(fn)  # deque.append is atomic
        self._wake()

    def run_sync(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run `fn` on the loop thread and return its result (directly if already on it)."""
        if self.in_loop() or not self.running:
            return fn()
        fut: Future[T] = Future()

        def call() -> None:
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                fut.set_exception(exc)

        self.call_soon_threadsafe(call)
        return fut.result(timeout)

    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        """Loop thread only."""
        handle = TimerHandle(time.monotonic() + max(0.0, delay), next(self._seq), fn)
        heapq.heappush(self._timers, handle)
        return handle

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # the buffer is full, so the loop is going to wake anyway

    # -- sockets (loop thread only) ---------------------------------------------------------

    def register(self, sock: Any, events: int, callback: Callable[[int], None]) -> None:
        try:
            self._sel.register(sock, events, callback)
        except KeyError:
            self._sel.modify(sock, events, callback)

    def modify(self, sock: Any, events: int) -> None:
        try:
            key = self._sel.get_key(sock)
        except (KeyError, ValueError):
            return
        if key.events != events:
            self._sel.modify(sock, events, key.data)

    def unregister(self, sock: Any) -> None:
        try:
            self._sel.unregister(sock)
        except (KeyError, ValueError):
            pass

    # -- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._halt:
            timeout = 0.5
            if self._calls:
                timeout = 0.0
            elif self._timers:
                timeout = min(timeout, max(0.0, self._timers[0].when - time.monotonic()))
            for key, mask in self._sel.select(timeout):
                if key.data is None:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                    continue
                self._guard(key.data, mask)
            while self._calls:
                self._guard(self._calls.popleft())
            now = time.monotonic()
            while self._timers and self._timers[0].when <= now:
                handle = heapq.heappop(self._timers)
                if not handle.cancelled:
                    self._guard(handle.fn)

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        # One misbehaving device must not stop the hundreds of others sharing this thread.
        try:
            fn(*args)
        except Exception:  # noqa: BLE001
            log.exception("%s: callback failed", self.name)
