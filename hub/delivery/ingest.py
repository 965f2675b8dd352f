"""What comes back from devices: acks, status and presence, written in batches. The sweeper,
the ingest's other thread, is in hub.delivery.sweeper.

Adapters' listeners call the sink from their own threads; one writer thread drains the buffer
so that a burst of thousands of acks costs a few transactions, not thousands.

Two promises a province relies on:
* one bad message never stops the others: a batch that fails on its content is split until the
  one item at fault is found; that item goes to the quarantine (hub.delivery.quarantine), the rest are
  written. Only a failure of the database itself (locked, unreachable) puts items back to retry.
* nothing heard is lost to a crash: an item's `done` callback (vendor.ResultSink) runs only
  once its batch is committed (or it is quarantined), and MQTT listeners acknowledge the
  message to the broker only then, so the broker redelivers whatever a killed ingest held.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update

from hub.delivery import arbitration, quarantine, readback, redeliver, resume
from hub.delivery.sweeper import Sweeping
from hub import events
from hub.fleet import health, status_writer as ingest_status
from hub.store.batching import chunks
from hub.store.db import utcnow
from hub.delivery.states import finish_by_device
from hub.store.models import DeliveryState, Device, DeviceStatus
from hub.runtime import Runtime
from hub.text import printable_repr
from hub.vendor import Ack, Done, TransientError, VendorAdapter
from hub.vendor_traits import traits_of

log = logging.getLogger(__name__)
REJECTED_PER_DEVICE_AND_BATCH = 5  # unparsable messages of one device kept per write batch

@dataclass
class _Item:
    kind: str  # ack | status | presence | rejected (value: (kind, payload, reason))
    vendor: str
    address: str
    value: Any
    at: datetime
    done: Done | None = None  # called once the item is committed or quarantined


class BufferedSink:
    """The ResultSink handed to adapters. Thread-safe; never blocks the listener. It confirms
    commits (vendor.ResultSink): each method takes an optional `done`."""

    confirms_commit = True

    def __init__(self) -> None:
        self.buffer: queue.SimpleQueue[_Item] = queue.SimpleQueue()

    def ack(self, vendor: str, address: str, ack: Ack, done: Done | None = None) -> None:
        self.buffer.put(_Item("ack", vendor, address, ack, utcnow(), done))

    def status(self, vendor: str, address: str, status: dict[str, Any], done: Done | None = None) -> None:
        self.buffer.put(_Item("status", vendor, address, status, utcnow(), done))

    def presence(self, vendor: str, address: str, online: bool, done: Done | None = None) -> None:
        self.buffer.put(_Item("presence", vendor, address, online, utcnow(), done))

    def rejected(self, vendor: str, address: str, kind: str, payload: Any, reason: str,
                 done: Done | None = None) -> None:
        """A message the listener could not parse: kept in the quarantine."""
        self.buffer.put(_Item("rejected", vendor, address, (kind, payload, reason), utcnow(), done))


def _database_trouble(exc: BaseException) -> bool:
    """Whether a failed write says the database is unavailable (locked, unreachable, a deadlock
    to retry) rather than that something in the batch cannot be stored."""
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
                        sa_exc.DisconnectionError)):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


class Ingest(Sweeping):
    """Runs every vendor's listener and writes what they hear. `start()` then `stop()`."""

    def __init__(self, rt: Runtime, vendors: list[str] | None = None, flush_interval_s: float | None = None,
                 max_batch: int | None = None, batch_pause_s: float | None = None) -> None:
        self.rt = rt
        self.vendors = vendors
        self.sink = BufferedSink()
        st = rt.settings  # the ingest_* settings, unless a caller (a test, a bench) says otherwise
        self.flush_interval_s = st.ingest_flush_interval_s if flush_interval_s is None else flush_interval_s
        self.batch_pause_s = st.ingest_batch_pause_s if batch_pause_s is None else batch_pause_s
        self.max_batch = st.ingest_max_batch if max_batch is None else max_batch
        self.adapters: dict[str, VendorAdapter] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._addresses: dict[tuple[str, str], str] = {}
        # status: reports applied (written, or superseded by a newer one of the same device in the
        # same batch: status_coalesced); status_stale: ignored, older than what was stored.
        self.stats = {"acks": 0, "acks_applied": 0, "status": 0, "status_coalesced": 0, "status_stale": 0,
                      "presence": 0, "unknown_device": 0, DeliveryState.EXPIRED.value: 0,
                      "transitions": 0, "requeued_jobs": 0, "quarantined": 0, "rejected": 0, "rejected_not_kept": 0}
        self._next_requeue = 0.0
        self.comebacks = redeliver.Comebacks(rt)  # devices back online: send again what they missed
        self.policy = health.HealthPolicy(rt.settings.heartbeat_timeout_s, rt.settings.failure_threshold)
        self.watch_interval_s = st.ingest_watch_interval_s
        # Fault drills only (0 in production): hold each batch this long before writing it, so a
        # test can kill the process between hearing items and storing them.
        self.commit_delay_s = float(rt.settings.ingest_commit_delay_s or 0.0)
        # A vendor whose link is down at start-up (open() raised TransientError) is retried by the
        # sweeper after these many seconds, doubling up to the second; the others work meanwhile.
        self.retry_backoff_s = (st.ingest_link_retry_s, st.ingest_link_retry_max_s)
        self._released: dict[str, float] = {}  # held commands enqueued again (hub.delivery.arbitration), when
        self._retry: dict[str, tuple[int, float]] = {}  # vendor -> (failed attempts, next try, monotonic)

    def start(self) -> None:
        watched = self._devices_by_vendor()
        for name in self._wanted(watched):
            self._try_start(name, watched.get(name, []))
        for target, tname in ((self._writer, "hub-ingest-writer"), (self._sweeper, "hub-sweeper")):
            t = threading.Thread(target=target, name=tname, daemon=True)
            t.start()
            self._threads.append(t)
        log.info("ingest listening to %s", ", ".join(self.adapters) or "no vendors")

    def _wanted(self, watched: dict[str, list[Any]]) -> list[str]:
        """Vendors to listen to: those named, else those with devices or a configuration section,
        so an installed but unused plugin (say, one that needs credentials) is left alone."""
        if self.vendors is not None:
            return list(self.vendors)
        installed = self.rt.plugins.vendors()
        return sorted(v for v in installed if v in watched or v in self.rt.settings.plugins)

    def _start_adapter(self, name: str, devices: list[Any]) -> None:
        adapter = self.rt.make_adapter(name)
        adapter.open()
        adapter.watch(devices)
        adapter.listen(self.sink)
        if not adapter.wait_ready(10):
            log.warning("%s is not ready to hear devices after 10 s; early acks may arrive late", name)
        self.adapters[name] = adapter

    def _try_start(self, name: str, devices: list[Any]) -> None:
        try:
            self._start_adapter(name, devices)
        except TransientError as exc:
            failed = self._retry.get(name, (0, 0.0))[0] + 1
            first, most = self.retry_backoff_s
            delay = min(most, first * 2 ** (failed - 1))
            self._retry[name] = (failed, time.monotonic() + delay)
            log.warning("%s: link down (%s); retrying in %g s, the other vendors keep working", name, exc, delay)
        else:
            self._retry.pop(name, None)

    def _retry_down(self) -> None:
        due = [n for n, (_, at) in self._retry.items() if at <= time.monotonic()]
        if due:
            watched = self._devices_by_vendor()
            for name in due:
                self._try_start(name, watched.get(name, []))

    def stop(self) -> None:
        for adapter in self.adapters.values():
            try:
                adapter.close()
            except Exception:
                log.warning("closing %s failed", adapter.manifest.name, exc_info=True)
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self.flush()

    # -- writing ------------------------------------------------------------------------------------
    def _writer(self) -> None:
        while not self._stop.is_set():
            try:
                # Unless a full batch is waiting, pause between flushes: the writer shares the GIL
                # with the listeners' network threads, and a few large transactions cost it much
                # less than many small ones (bench/: status ingest; reports of one device in a batch
                # are also written once).
                n = self.flush()
                if n < self.max_batch:
                    time.sleep(self.flush_interval_s if n == 0 else self.batch_pause_s)
            except Exception:  # a database hiccup must not stop ingest; items stay in the buffer
                log.exception("ingest flush failed; retrying")
                time.sleep(1)

    def _devices_by_vendor(self) -> dict[str, list[Any]]:
        from hub.delivery.jobs import device_ref

        out: dict[str, list[Any]] = {}
        with self.rt.db.session() as s:
            for d in s.scalars(select(Device).where(Device.admin_state == "enabled")):
                out.setdefault(d.vendor, []).append(device_ref(d))
        return out

    def refresh_watch(self) -> None:
        """Tell adapters about devices added or removed since the last time, and start listening
        to a vendor whose first device was just registered."""
        watched = self._devices_by_vendor()
        for name, adapter in list(self.adapters.items()):
            adapter.watch(watched.get(name, []))
        for name in self._wanted(watched):
            if name not in self.adapters and name not in self._retry and name in self.rt.plugins.vendors():
                try:
                    self._start_adapter(name, watched.get(name, []))
                except Exception:  # retried at the next refresh; other vendors keep working
                    log.exception("could not start listening to %s", name)

    def _announce(self, changes: list[health.StateChange]) -> None:
        self.stats["transitions"] += len(changes)
        # rt._redis, not rt.redis: the connection opened already (the sweeper opens it), so that a
        # writer with transitions to announce never waits to connect to a Redis that is down
        events.publish_many([c.as_event() for c in changes], redis=self.rt._redis,
                            channel=events.channel_name(self.rt))

    def flush(self) -> int:
        """Write everything buffered now; returns how many items were handled (written,
        quarantined, or dropped as from unknown devices)."""
        items: list[_Item] = []
        while len(items) < self.max_batch:
            try:
                items.append(self.sink.buffer.get_nowait())
            except queue.Empty:
                break
        if not items:
            return 0
        todo = [items]
        chunk: list[_Item] = []
        try:
            while todo:
                chunk = todo.pop()
                try:
                    self._write(chunk)
                except Exception as exc:
                    if _database_trouble(exc):
                        raise
                    if len(chunk) == 1:
                        self._quarantine(chunk[0], exc)
                    else:  # find the item at fault: halves, first half first (arrival order)
                        half = len(chunk) // 2
                        todo += [chunk[half:], chunk[:half]]
                        chunk = []
                        continue
                self._confirm(chunk)
                chunk = []
        except Exception:
            for rest in [chunk, *reversed(todo)]:  # put back what is not stored, so nothing is lost
                for it in rest:
                    self.sink.buffer.put(it)
            raise
        return len(items)

    @staticmethod
    def _confirm(items: list[_Item]) -> None:
        for it in items:
            if it.done is not None:
                try:
                    it.done()
                except Exception:  # noqa: BLE001 - a listener's trouble must not stop the writer
                    log.warning("confirming a %s from %s/%s failed", it.kind, it.vendor, it.address, exc_info=True)

    def _quarantine(self, it: _Item, exc: Exception) -> None:
        """Keep the one item that cannot be stored, with why, instead of retrying it for ever."""
        reason = f"could not be stored: {type(exc).__name__}: {exc}"
        with self.rt.db.session() as s:
            quarantine.store(s, [quarantine.Entry(it.vendor, it.address, it.kind, it.value, reason, it.at,
                                                  self._addresses.get((it.vendor, it.address)))])
        self.stats["quarantined"] += 1
        log.warning("quarantined a %s from %s/%s: %s", it.kind, it.vendor, it.address,
                    printable_repr(reason, 300))

    def _device_ids(self, session: Any, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        missing = keys - self._addresses.keys()
        if missing:
            by_vendor: dict[str, list[str]] = {}
            for v, a in missing:
                by_vendor.setdefault(v, []).append(a)
            for vendor, addrs in by_vendor.items():
                for chunk in chunks(addrs):
                    q = select(Device.address, Device.id).where(Device.vendor == vendor,
                                                                 Device.address.in_(chunk))
                    for address, did in session.execute(q):
                        self._addresses[(vendor, address)] = did
        return {k: self._addresses[k] for k in keys if k in self._addresses}

    def _write(self, items: list[_Item]) -> None:
        if self.commit_delay_s:  # a drill: heard, not yet stored (outside the transaction: SQLite locks)
            time.sleep(self.commit_delay_s)
        with self.rt.db.session() as s:
            ids = self._device_ids(s, {(it.vendor, it.address) for it in items})
            acks, reports, rejected = [], [], []
            per_address: dict[tuple[str, str], int] = {}
            flooded = 0
            for it in items:
                did = ids.get((it.vendor, it.address))
                if it.kind == "rejected":
                    kind, payload, why = it.value
                    # a few per device and batch say enough; a flood of garbage must not fill the table
                    if per_address.setdefault((it.vendor, it.address), 0) < REJECTED_PER_DEVICE_AND_BATCH:
                        per_address[(it.vendor, it.address)] += 1
                        rejected.append(quarantine.Entry(it.vendor, it.address, kind, payload, why, it.at, did))
                    else:
                        flooded += 1
                    continue
                if did is None:
                    self.stats["unknown_device"] += 1
                    continue
                if it.kind == "ack":
                    a: Ack = it.value
                    acks.append((a.command_id, did, DeliveryState.ACKED if a.ok else DeliveryState.FAILED,
                                 None if a.ok else f"device refused: {a.reason or 'no reason given'}",
                                 a.detail))
                else:
                    reports.append((did, it))
            applied = finish_by_device(s, acks)
            changes = self._store_status(s, reports, {did for _, did, _, _, _ in acks})
            quarantine.store(s, rejected)
            applied += self._read_back(s, reports)
        # Counted once committed: a flush that fails is retried with the same items.
        self.stats["rejected"] += len(rejected) + flooded
        self.stats["rejected_not_kept"] += flooded
        self.stats["acks"] += len(acks)
        self.stats["acks_applied"] += applied
        self._announce(changes)
        # what devices played (hub.delivery.as_run), and the resumes the hub drives: before the
        # held plays are released, so that a resumed item goes ahead of lower ones held meanwhile
        resume.after_batch(self.rt, [(it.kind, it.vendor, ids[(it.vendor, it.address)], it.value, it.at)
                                     for it in items if it.kind != "rejected" and (it.vendor, it.address) in ids])
        by_hub = {v for v in {it.vendor for _, it in reports} if arbitration.by_hub(self.rt.plugins, v)}
        if by_hub:
            self._release_held({did for did, it in reports if it.vendor in by_hub})
        back = {did for did, it in reports if it.kind == "presence" and it.value}
        back |= {c.device_id for c in changes if c.state != "offline" and c.previous in ("offline", "unknown")}
        if self.comebacks.note(back, utcnow()):
            self._redeliver()

    def _release_held(self, device_ids: set[str]) -> None:
        """Plays the hub held for devices without priority handling go out once what outranked
        them ended (hub.delivery.arbitration)."""
        if not device_ids:
            return
        try:
            with self.rt.db.session() as s:
                ready = arbitration.releasable(s, device_ids)
                s.expunge_all()
            now = time.monotonic()
            # each status report would release them again: once per few seconds is enough
            ready = [c for c in ready if now - self._released.get(c.id, -1e9) > 3.0]
            self._released = {k: t for k, t in self._released.items() if now - t < 60}
            self._released.update({c.id: now for c in ready})
            arbitration.release(self.rt, ready)
        except Exception as exc:  # Redis down: the sweeper's requeue of lost jobs sends them later
            log.warning("could not release held plays: %s: %s", type(exc).__name__, exc)

    def _read_back(self, s: Any, reports: list[tuple[str, _Item]]) -> int:
        """Devices without acknowledgements are confirmed by their status (hub.delivery.readback)."""
        steps = {}
        for it in {it.vendor for _, it in reports}:
            traits = traits_of(self.rt.plugins.vendors()[it].manifest) if it in self.rt.plugins.vendors() else None
            if traits is not None and traits.confirmation == "readback":
                steps[it] = traits.level_step
        if not steps:
            return 0
        return readback.confirm(s, [(did, it.value) for did, it in reports
                                    if it.kind == "status" and it.vendor in steps], steps)

    def _store_status(self, s: Any, reports: list[tuple[str, _Item]],
                      answered: set[str]) -> list[health.StateChange]:
        """Apply status and presence in arrival order (hub.fleet.status_writer); a device that answered
        is not failing."""
        reported = {did for did, _ in reports}
        # PostgreSQL: take every row lock this batch needs now, in device id order, as the sweeper
        # does (health.lock_status_rows); the statements below each lock in their own order.
        health.lock_status_rows(s, answered | reported)
        # Devices that only acked need one thing: consecutive_failures back to 0. Do it in SQL for
        # the whole batch rather than loading thousands of ORM rows (bench/: 10,000-device fan-out).
        ack_only = sorted(answered - reported)
        for chunk in chunks(ack_only):
            s.execute(update(DeviceStatus).where(DeviceStatus.device_id.in_(chunk),
                                                 DeviceStatus.consecutive_failures != 0)
                      .values(consecutive_failures=0).execution_options(synchronize_session=False))
            have = set(s.scalars(select(DeviceStatus.device_id).where(DeviceStatus.device_id.in_(chunk))))
            missing = [did for did in chunk if did not in have]
            if missing:
                s.connection().execute(DeviceStatus.__table__.insert(), [
                    {"device_id": did, "online": False, "operating_state": "unknown", "consecutive_failures": 0,
                     "faults": []} for did in missing])
        out = ingest_status.store(s, [ingest_status.Report(did, it.kind, it.value, it.at) for did, it in reports],
                                  answered & reported)
        for k in ("status", "presence", "status_coalesced", "status_stale"):
            self.stats[k] += getattr(out, k.removeprefix("status_"))
        return out.changes
