"""Status on a polled bus: boards never speak unasked, so listen() means asking each watched
board for its status every `interval_s` and handing answers (and silences) to the sink."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hub.vendor import ResultSink, StatusParseError

from hub_serial_led import protocol as p
from hub_serial_led.bus import Bus, BusError, PortUnavailable
from hub_serial_led.frame import Frame

log = logging.getLogger(__name__)

_MAX_PARALLEL_BUSES = 8  # separate lines are polled side by side; boards on one line in turn


class StatusPoller:
    def __init__(self, vendor: str, sink: ResultSink, targets: Callable[[], list[tuple[Bus, dict[int, str]]]],
                 release: Callable[[Bus], None], *, interval_s: float, offline_after: int, timeout_s: float,
                 gap_s: float, parse: Callable[[str, bytes], dict[str, Any]]) -> None:
        self.vendor = vendor
        self.sink = sink
        self.targets = targets  # (bus, {board: device address}) per line, each bus acquired for a cycle
        self.release = release
        self.interval_s = interval_s
        self.offline_after = offline_after
        self.timeout_s = timeout_s
        self.gap_s = gap_s
        self.parse = parse
        self._misses: dict[str, int] = {}
        self._offline: set[str] = set()
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._pool = ThreadPoolExecutor(_MAX_PARALLEL_BUSES, thread_name_prefix=f"{self.vendor}-poll")
        self._thread = threading.Thread(target=self._run, name=f"{self.vendor}-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            # A cycle stops between boards, so at most one transaction per bus is in flight.
            thread.join(self.timeout_s + self.gap_s + 10)
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - the poller must outlive a bug in one cycle
                log.exception("%s: status poll cycle failed", self.vendor)
            self._stop.wait(self.interval_s)

    def poll_once(self) -> None:
        """Ask every target board once."""
        targets = self.targets()
        try:
            work = [(bus, boards) for bus, boards in targets if boards]
            if len(work) > 1 and self._pool is not None:
                for future in [self._pool.submit(self._poll_bus, bus, boards) for bus, boards in work]:
                    future.result()
            else:
                for bus, boards in work:
                    self._poll_bus(bus, boards)
        finally:
            for bus, _boards in targets:
                self.release(bus)

    def _poll_bus(self, bus: Bus, boards: dict[int, str]) -> None:
        port_down: str | None = None
        for board, address in sorted(boards.items()):
            if self._stop.is_set():
                return
            if port_down is not None:  # one connect timeout per line and cycle, not one per board
                self._missed(address, port_down)
                continue
            try:
                reply = bus.transact(Frame(board, p.QUERY_STATUS), self.timeout_s, self.gap_s)
            except PortUnavailable as exc:
                port_down = str(exc)
                self._missed(address, port_down)
                continue
            except BusError as exc:
                self._missed(address, str(exc))
                continue
            if reply.command == p.NAK:
                # It answered, so it is there; what it is doing stays unknown.
                _cmd, code = p.decode_nak(reply.payload)
                log.warning("%s: %s refused the status query: %s", self.vendor, address,
                            p.describe_error(code) if code is not None else "NAK")
                self._heard(address)
                self._deliver(lambda: self.sink.presence(self.vendor, address, True))
                continue
            try:
                status = self.parse(address, reply.payload)
            except StatusParseError as exc:
                self._missed(address, str(exc))
                continue
            self._heard(address)
            self._deliver(lambda: self.sink.status(self.vendor, address, status))

    def _heard(self, address: str) -> None:
        with self._state_lock:
            self._misses[address] = 0
            self._offline.discard(address)

    def _missed(self, address: str, why: str) -> None:
        with self._state_lock:
            n = self._misses[address] = self._misses.get(address, 0) + 1
            report = n >= self.offline_after and address not in self._offline
            if report:
                self._offline.add(address)
        log.debug("%s: status poll of %s failed (%d in a row): %s", self.vendor, address, n, why)
        if report:
            log.info("%s: %s is offline after %d unanswered polls: %s", self.vendor, address, n, why)
            self._deliver(lambda: self.sink.presence(self.vendor, address, False))

    def _deliver(self, call: Callable[[], None]) -> None:
        try:
            call()
        except Exception:  # noqa: BLE001 - a faulty sink must not stop the polling
            log.warning("%s: sink failed", self.vendor, exc_info=True)
