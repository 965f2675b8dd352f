"""Deliver again what a device may have missed, when it comes back.

A row is `sent` once the transport took the command (for MQTT: the broker's PUBACK). That is not
the device having it: a broker restarted mid fan-out accepts publishes for clean-session devices
that have not subscribed again yet and drops them, and acks published just before it stopped die
with it. Such rows would read `sent` until their expires_at, then `expired`, although the device is
back and could still carry the command out.

So the ingest notes every device it hears coming back (presence online, or a transition out of
offline) and, for `comeback_window_s` after that, enqueues a resend of the device's rows that are `sent`,
unexpired and unacked and were handed to the transport before the hub heard it come back (a
device announces presence only once it has subscribed again, so what was handed later reached
it). A row still being sent when the device came back is caught by a later look within the
window. Only what still stands is sent again: a row is skipped when a newer command of the same
slot (hub.capabilities.VERB_SLOT), of no lower class and from an issuer scope covering its own
(the supersede rules of hub.delivery.dispatch) was queued, sent or acked for the device — an emergency
`play` whose ack was lost is not replayed after the `stop` that followed it. Devices answer a repeated command id again without carrying it out twice
(docs/writing-a-plugin.md), so a resend of something they did costs one more ack.
"""
from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from hub.delivery import job_paths
from hub.capabilities import EMERGENCY, PRIORITY_RANK, VERB_SLOT
from hub.delivery.claims import covers
from hub.store.batching import chunks
from hub.store.db import utcnow
from hub.store.models import Command, Delivery, DeliveryState, Device
from hub.runtime import Runtime, get_runtime
from hub.vendor import Outcome, Outgoing

log = logging.getLogger(__name__)

RESEND_PREFIX = "hubresend-"


class Comebacks:
    """Devices heard coming back, and the rows already resent for each; owned by one ingest."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._back: dict[str, tuple[datetime, float]] = {}  # device id → (when, monotonic deadline)
        self._done: dict[str, set[int]] = defaultdict(set)
        self._fresh: set[str] = set()  # noted since the last look
        self._next_look = 0.0
        self.stats = {"resent": 0, "jobs": 0}

    def note(self, device_ids: Iterable[str], at: datetime) -> bool:
        """Remember devices that came back at `at`; whether there were any."""
        deadline = time.monotonic() + self.rt.settings.comeback_window_s
        n = 0
        for did in device_ids:
            self._back[did] = (at, deadline)
            self._done.pop(did, None)
            self._fresh.add(did)
            n += 1
        return n > 0

    def pending(self) -> bool:
        return bool(self._back)

    def _repeatable(self, vendor: str) -> bool:
        """Whether a repeat can be told from a new command by the vendor's devices. Devices
        confirmed by read-back (hub.vendor_traits) take no command ids, so a repeat would be done
        again; their row is acked when their status shows the effect, or ends `expired`."""
        from hub.vendor_traits import traits_of

        plugin = self.rt.plugins.vendors().get(vendor)
        return plugin is None or traits_of(plugin.manifest).confirmation != "readback"

    def run(self, now: datetime | None = None) -> int:
        """Enqueue resends of what the devices that came back may have missed; returns the rows.
        Devices noted since the last look are looked at now, all of the window's every `comeback_relook_s`
        (a row being sent when its device came back turns `sent` a moment later)."""
        mono = time.monotonic()
        for did in [d for d, (_, until) in self._back.items() if until < mono]:
            del self._back[did]
            self._done.pop(did, None)
            self._fresh.discard(did)
        if mono >= self._next_look:
            self._next_look = mono + self.rt.settings.comeback_relook_s
            look = dict(self._back)
        else:
            look = {d: self._back[d] for d in self._fresh if d in self._back}
        self._fresh.clear()
        if not look:
            return 0
        now = now or utcnow()
        with self.rt.db.session() as s:
            wanted = _standing(s, _candidates(s, look, now))
        wanted = [r for r in wanted if r["id"] not in self._done[r["device_id"]] and self._repeatable(r["vendor"])]
        if not wanted:
            return 0
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for r in wanted:
            groups[(r["priority"], r["vendor"])].append(r["id"])
        size = self.rt.settings.batch_size
        for (priority, vendor), ids in groups.items():
            queue = self.rt.queue(priority)
            queue.enqueue_many([queue.prepare_data(
                job_paths.RESEND, args=(vendor, ids[i:i + size]), at_front=priority == EMERGENCY,
                timeout=120, result_ttl=3600, failure_ttl=7 * 86400,
                job_id=f"{RESEND_PREFIX}{secrets.token_hex(8)}",
                description=f"resend {len(ids[i:i + size])} deliveries via {vendor} to devices that came back")
                for i in range(0, len(ids), size)])
            self.stats["jobs"] += (len(ids) + size - 1) // size
        for r in wanted:  # enqueued: not again for this comeback
            self._done[r["device_id"]].add(r["id"])
        self.stats["resent"] += len(wanted)
        log.info("%d deliveries to %d devices that came back enqueued again", len(wanted),
                 len({r["device_id"] for r in wanted}))
        return len(wanted)


_COLUMNS = (Delivery.id, Delivery.device_id, Delivery.vendor, Delivery.state, Delivery.sent_at, Command.verb,
            Command.priority, Command.issuer_scope, Command.created_at)


def _candidates(s: Any, back: dict[str, tuple[datetime, float]], now: datetime) -> list[dict[str, Any]]:
    """Rows `sent`, unexpired, handed over before their device came back."""
    ids = sorted(back)
    out = []
    for chunk in chunks(ids):
        for row in s.execute(select(*_COLUMNS).join(Command, Command.id == Delivery.command_id).where(
                Delivery.device_id.in_(chunk), Delivery.state == DeliveryState.SENT, Command.expires_at > now)):
            r = row._asdict()
            came = back[r["device_id"]][0]
            if r["sent_at"] is None or r["sent_at"] < came:
                out.append(r)
    return out


def _standing(s: Any, cands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of `cands`, those no newer command of the same device and slot replaces."""
    if not cands:
        return []
    devices = sorted({r["device_id"] for r in cands})
    oldest = min(r["created_at"] for r in cands)
    newer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for chunk in chunks(devices):
        for row in s.execute(select(*_COLUMNS).join(Command, Command.id == Delivery.command_id).where(
                Delivery.device_id.in_(chunk),
                Delivery.state.in_((DeliveryState.QUEUED, DeliveryState.SENT, DeliveryState.ACKED)),
                Command.created_at >= oldest)):
            newer[row.device_id].append(row._asdict())

    def replaced(r: dict[str, Any]) -> bool:
        slot = VERB_SLOT.get(r["verb"])
        return any(VERB_SLOT.get(o["verb"]) == slot and (o["created_at"], o["id"]) > (r["created_at"], r["id"])
                   and PRIORITY_RANK.get(o["priority"], 0) >= PRIORITY_RANK.get(r["priority"], 0)
                   and covers(o["issuer_scope"], r["issuer_scope"]) for o in newer[r["device_id"]])

    return sorted((r for r in cands if not replaced(r)), key=lambda r: (r["created_at"], r["id"]))


def resend(vendor: str, delivery_ids: list[int], rt: Runtime | None = None) -> dict[str, int]:
    """The rq job: hand the rows still `sent` and unexpired to the transport again, oldest command
    first, one device at most once per adapter call. An ack on the spot ends the row; anything
    else leaves it `sent` (its ack may come, or it expires)."""
    from hub.delivery.states import finish
    from hub.delivery.jobs import _send, count_attempt, device_ref, envelope_for

    rt = rt or get_runtime()
    tally = {"resent": 0, DeliveryState.ACKED.value: 0, "not_taken": 0}
    now = utcnow()
    with rt.db.session() as s:
        rows = []
        for chunk in chunks(delivery_ids):
            rows += s.execute(select(Delivery.id, Device, Command).join(Device, Device.id == Delivery.device_id)
                              .join(Command, Command.id == Delivery.command_id)
                              .where(Delivery.id.in_(chunk), Delivery.state == DeliveryState.SENT,
                                     Command.expires_at > now)).all()
        rows.sort(key=lambda r: (r[2].created_at, r[0]))
        envelopes = {cmd.id: envelope_for(cmd, rt) for _, _, cmd in rows}
        items = [(did, Outgoing(device_ref(dev), envelopes[cmd.id])) for did, dev, cmd in rows]
        count_attempt(s, [did for did, _ in items])
    calls: list[list[tuple[int, Outgoing]]] = []
    seen: list[set[str]] = []
    for did, out in items:  # results name devices: a device once per call
        n = next((k for k, devs in enumerate(seen) if out.device.id not in devs), len(calls))
        if n == len(calls):
            calls.append([])
            seen.append(set())
        calls[n].append((did, out))
        seen[n].add(out.device.id)
    for call in calls:
        results = _send(rt, vendor, [o for _, o in call])
        by_device = {o.device.id: did for did, o in call}
        acked = [(by_device[r.device_id], DeliveryState.ACKED, None, r.detail) for r in results
                 if r.outcome is Outcome.ACKED and r.device_id in by_device]
        with rt.db.session() as s:
            tally[DeliveryState.ACKED] += finish(s, acked)
        tally["resent"] += len(call)
        tally["not_taken"] += sum(1 for r in results if r.outcome is Outcome.FAILED)
    if tally["not_taken"]:
        log.warning("resend via %s: %d of %d not taken by the transport; those rows stay sent until acked or "
                    "expired", vendor, tally["not_taken"], tally["resent"])
    return tally
