"""What comes back from devices: acks, status and presence, written in batches; plus the
sweeper that ends overdue deliveries `expired`.

Adapters' listeners call the sink from their own threads; one writer thread drains the buffer
so that a burst of thousands of acks costs a few transactions, not thousands.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from hub.db import utcnow
from hub.deliveries import expire_due, finish_by_device
from hub.models import Device, DeviceStatus
from hub.runtime import Runtime
from hub.vendor import Ack, VendorAdapter

log = logging.getLogger(__name__)

_STATUS_FIELDS = ("online", "activity", "source", "volume", "brightness", "power", "signal", "faults", "firmware",
                  "reported_at")


@dataclass
class _Item:
    kind: str  # ack | status | presence
    vendor: str
    address: str
    value: Any
    at: datetime


class BufferedSink:
    """The ResultSink handed to adapters. Thread-safe; never blocks the listener."""

    def __init__(self) -> None:
        self.buffer: queue.SimpleQueue[_Item] = queue.SimpleQueue()

    def ack(self, vendor: str, address: str, ack: Ack) -> None:
        self.buffer.put(_Item("ack", vendor, address, ack, utcnow()))

    def status(self, vendor: str, address: str, status: dict[str, Any]) -> None:
        self.buffer.put(_Item("status", vendor, address, status, utcnow()))

    def presence(self, vendor: str, address: str, online: bool) -> None:
        self.buffer.put(_Item("presence", vendor, address, online, utcnow()))


class Ingest:
    """Runs every vendor's listener and writes what they hear. `start()` then `stop()`."""

    def __init__(self, rt: Runtime, vendors: list[str] | None = None, flush_interval_s: float = 0.05,
                 max_batch: int = 5000) -> None:
        self.rt = rt
        self.vendors = vendors
        self.sink = BufferedSink()
        self.flush_interval_s = flush_interval_s
        self.max_batch = max_batch
        self.adapters: dict[str, VendorAdapter] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._addresses: dict[tuple[str, str], str] = {}
        self.stats = {"acks": 0, "acks_applied": 0, "status": 0, "presence": 0, "unknown_device": 0, "expired": 0}

    def start(self) -> None:
        names = self.vendors if self.vendors is not None else sorted(self.rt.plugins.vendors())
        for name in names:
            adapter = self.rt.make_adapter(name)
            adapter.open()
            adapter.listen(self.sink)
            if not adapter.wait_ready(10):
                log.warning("%s is not ready to hear devices after 10 s; early acks may arrive late", name)
            self.adapters[name] = adapter
        for target, tname in ((self._writer, "hub-ingest-writer"), (self._sweeper, "hub-sweeper")):
            t = threading.Thread(target=target, name=tname, daemon=True)
            t.start()
            self._threads.append(t)
        log.info("ingest listening to %s", ", ".join(self.adapters) or "no vendors")

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
                if self.flush() == 0:
                    time.sleep(self.flush_interval_s)
            except Exception:  # a database hiccup must not stop ingest; items stay in the buffer
                log.exception("ingest flush failed; retrying")
                time.sleep(1)

    def _sweeper(self) -> None:
        while not self._stop.wait(self.rt.settings.sweep_interval_s):
            try:
                with self.rt.db.session() as s:
                    self.stats["expired"] += expire_due(s)
            except Exception:
                log.exception("expiry sweep failed; retrying")

    def flush(self) -> int:
        """Write everything buffered now; returns how many items were written."""
        items: list[_Item] = []
        while len(items) < self.max_batch:
            try:
                items.append(self.sink.buffer.get_nowait())
            except queue.Empty:
                break
        if not items:
            return 0
        try:
            self._write(items)
        except Exception:
            for it in items:  # put back, so nothing is lost to a failed transaction
                self.sink.buffer.put(it)
            raise
        return len(items)

    def _device_ids(self, session: Any, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        missing = keys - self._addresses.keys()
        if missing:
            by_vendor: dict[str, list[str]] = {}
            for v, a in missing:
                by_vendor.setdefault(v, []).append(a)
            for vendor, addrs in by_vendor.items():
                for i in range(0, len(addrs), 900):
                    q = select(Device.address, Device.id).where(Device.vendor == vendor,
                                                                 Device.address.in_(addrs[i:i + 900]))
                    for address, did in session.execute(q):
                        self._addresses[(vendor, address)] = did
        return {k: self._addresses[k] for k in keys if k in self._addresses}

    def _write(self, items: list[_Item]) -> None:
        with self.rt.db.session() as s:
            ids = self._device_ids(s, {(it.vendor, it.address) for it in items})
            acks, statuses, presence = [], {}, {}
            for it in items:
                did = ids.get((it.vendor, it.address))
                if did is None:
                    self.stats["unknown_device"] += 1
                    continue
                if it.kind == "ack":
                    a: Ack = it.value
                    acks.append((a.command_id, did, "acked" if a.ok else "failed",
                                 None if a.ok else f"device refused: {a.reason or 'no reason given'}",
                                 a.detail))
                elif it.kind == "status":
                    statuses[did] = (it.value, it.at)  # the latest report wins
                else:
                    presence[did] = (it.value, it.at)
            self.stats["acks"] += len(acks)
            self.stats["acks_applied"] += finish_by_device(s, acks)
            self.stats["status"] += len(statuses)
            self.stats["presence"] += len(presence)
            self._store_status(s, statuses, presence)

    def _store_status(self, s: Any, statuses: dict[str, tuple[dict[str, Any], datetime]],
                      presence: dict[str, tuple[bool, datetime]]) -> None:
        touched = set(statuses) | set(presence)
        if not touched:
            return
        existing = set()
        ids = sorted(touched)
        for i in range(0, len(ids), 900):
            existing.update(s.scalars(select(DeviceStatus.device_id).where(DeviceStatus.device_id.in_(ids[i:i + 900]))))
        for did in ids:
            values: dict[str, Any] = {}
            if did in statuses:
                st, at = statuses[did]
                values.update({k: st.get(k) for k in _STATUS_FIELDS if k in st})
                values["last_seen_at"] = at
            if did in presence:
                online, at = presence[did]
                values["online"] = online
                if online:
                    values["last_seen_at"] = at
            if did in existing:
                s.execute(update(DeviceStatus).where(DeviceStatus.device_id == did).values(**values))
            else:
                s.add(DeviceStatus(device_id=did, **values))
