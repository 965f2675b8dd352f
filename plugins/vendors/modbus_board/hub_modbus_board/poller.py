"""Status without push: poll every known unit's status block, report changes and presence.

Modbus devices never speak first, so the adapter must be told which devices exist (`Roster`)
and ask each in turn. Endpoints are polled independently, so one that stops answering costs its
own timeouts and never delays the others' rounds.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from hub.vendor import ResultSink, StatusParseError

from hub_modbus_board import status as status_mod
from hub_modbus_board.addressing import BoardAddress, Endpoint, parse_address
from hub_modbus_board.client import Connections, LinkDown, ModbusFault
from hub_modbus_board.registers import STATUS_BLOCK, StatusBlock, registers_to_bytes

log = logging.getLogger(__name__)


class Roster:
    """The devices to poll: those the hub listed through `watch` (replaced on every call, as the
    registry is the authority) plus those sent to since, which the next `watch` supersedes."""

    def __init__(self) -> None:
        self._watched: dict[str, BoardAddress] = {}
        self._sent: dict[str, BoardAddress] = {}
        self._lock = threading.Lock()

    def watch(self, addresses: Iterable[str]) -> list[str]:
        """Replace the watched set; returns the addresses that could not be parsed."""
        parsed, bad = {}, []
        for a in addresses:
            try:
                parsed[a] = parse_address(a)
            except ValueError:
                bad.append(a)
        with self._lock:
            self._watched, self._sent = parsed, {}
        return bad

    def sent(self, pairs: Iterable[tuple[str, BoardAddress]]) -> None:
        with self._lock:
            for address, parsed in pairs:
                if address not in self._watched:
                    self._sent[address] = parsed

    def by_endpoint(self) -> dict[Endpoint, list[tuple[str, int]]]:
        with self._lock:
            every = {**self._sent, **self._watched}
        out: dict[Endpoint, list[tuple[str, int]]] = {}
        for address, parsed in sorted(every.items(), key=lambda kv: (kv[1].endpoint, kv[1].unit)):
            out.setdefault(parsed.endpoint, []).append((address, parsed.unit))
        return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._watched.keys() | self._sent.keys())


@dataclass
class _Seen:
    online: bool | None = None
    heartbeat: int | None = None
    alive_at: float | None = None  # when the heartbeat last moved
    first_answer_at: float | None = None
    reported: dict[str, Any] | None = None
    reported_when: float = 0.0
    error: str | None = None


class Poller:
    def __init__(self, vendor: str, roster: Roster, conns: Connections, sink: ResultSink, *, interval_s: float,
                 offline_after_s: float, refresh_s: float, max_parallel: int,
                 parse: Callable[[str, bytes], StatusBlock] = status_mod.decode) -> None:
        self.vendor = vendor
        self.roster = roster
        self.conns = conns
        self.sink = sink
        self.interval_s = interval_s
        self.offline_after_s = offline_after_s
        self.refresh_s = refresh_s
        self._parse = parse
        self._pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix=f"{vendor}-poll")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: dict[str, _Seen] = {}
        self._busy: set[Endpoint] = set()
        self._due: dict[Endpoint, float] = {}
        self._lock = threading.Lock()
        self.rounds = 0  # endpoint polls finished; lets tests wait for "at least one more round"

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"{self.vendor}-poller", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        # Polls in flight check the stop flag between units, so this waits for one request at most.
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        tick = min(0.05, self.interval_s / 4)
        while not self._stop.is_set():
            try:
                self._schedule(time.monotonic())
            except Exception:  # noqa: BLE001 - the poller must outlive any one bad round
                log.exception("%s: poll scheduling failed", self.vendor)
            self._stop.wait(tick)

    def _schedule(self, now: float) -> None:
        groups = self.roster.by_endpoint()
        with self._lock:
            listed = {a for devs in groups.values() for a, _u in devs}
            for gone in self._seen.keys() - listed:
                del self._seen[gone]
            for ep in self._due.keys() - groups.keys():
                del self._due[ep]
            for ep, devices in groups.items():
                if ep in self._busy or self._due.get(ep, 0.0) > now:
                    continue
                self._busy.add(ep)
                self._due[ep] = now + self.interval_s
                try:
                    self._pool.submit(self._poll_endpoint, ep, devices)
                except RuntimeError:  # shutting down
                    self._busy.discard(ep)
                    return

    def _poll_endpoint(self, ep: Endpoint, devices: list[tuple[str, int]]) -> None:
        try:
            conn = self.conns.get(ep)
            with conn.session():
                for i, (address, unit) in enumerate(devices):
                    if self._stop.is_set():
                        return
                    try:
                        regs = conn.read_input(unit, *STATUS_BLOCK)
                        block = self._parse(address, registers_to_bytes(regs))
                    except LinkDown as exc:
                        for a, _u in devices[i:]:  # nothing behind this endpoint answers now
                            self._observe(a, None, str(exc))
                        return
                    except (ModbusFault, StatusParseError) as exc:
                        self._observe(address, None, str(exc))
                        continue
                    self._observe(address, block, None)
        except Exception:  # noqa: BLE001
            log.exception("%s: polling %s failed", self.vendor, ep)
        finally:
            with self._lock:
                self._busy.discard(ep)
                self.rounds += 1

    def _observe(self, address: str, block: StatusBlock | None, error: str | None) -> None:
        now = time.monotonic()
        with self._lock:
            seen = self._seen.setdefault(address, _Seen())
        if block is not None:
            # Only a heartbeat seen moving proves the board's firmware runs: the controller
            # answers for a hung board too, with registers frozen at whatever they last held.
            if seen.first_answer_at is None:
                seen.first_answer_at = now
            elif block.heartbeat != seen.heartbeat:
                seen.alive_at = now
            seen.heartbeat = block.heartbeat
            if not error and seen.error:
                log.info("%s: %s answers again", self.vendor, address)
            seen.error = None
        elif error != seen.error:
            log.warning("%s: polling %s: %s", self.vendor, address, error)
            seen.error = error
        # Answering is not enough: a heartbeat that stopped means the firmware hangs.
        # A miss does not take a device offline at once: one lost answer is not an outage.
        alive = seen.alive_at is not None and now - seen.alive_at < self.offline_after_s
        # Until the heartbeat has had the time to move once, say nothing rather than report a
        # board offline for the second after the hub starts.
        undecided = (seen.online is None and not alive and seen.first_answer_at is not None
                     and now - seen.first_answer_at < self.offline_after_s)
        if alive != seen.online and not undecided:
            seen.online = alive
            if not alive:
                seen.reported = None  # report the full status again when it returns
            self._deliver(lambda: self.sink.presence(self.vendor, address, alive), address)
        if alive and block is not None:
            try:
                report = status_mod.to_status(address, block)
            except StatusParseError as exc:
                log.warning("%s: %s", self.vendor, exc)
                return
            key = {k: v for k, v in report.items() if k != "reported_at"}
            if key != seen.reported or now - seen.reported_when >= self.refresh_s:
                seen.reported, seen.reported_when = key, now
                self._deliver(lambda: self.sink.status(self.vendor, address, report), address)

    def _deliver(self, call: Callable[[], None], address: str) -> None:
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - a faulty sink must not stop polling
            log.warning("%s: sink failed on %s: %r", self.vendor, address, exc)
