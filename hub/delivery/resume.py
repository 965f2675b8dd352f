"""After each ingest batch: the as-run log (hub.delivery.as_run) and the resumes the hub drives.

Devices that arbitrate locally (vendor traits.priority == "device") keep an interrupted item and
play it again themselves. For the others (traits.priority == "hub"), when the device's status
shows that what interrupted an item ended, the hub sends the item again — a new command, visible
as a resume of the original:
* issuer `scheduler:arbiter`, idempotency key `resume:<original>:after:<interrupter>:<device>`
  (so a second ingest pass, or a restart, never sends it twice);
* the original's verb, content, params and class, to that one device, expiring when the
  original's slot closes (its expires_at) — it is only sent while that slot is open;
* otherwise, or when dispatch refuses it, a `skipped` row in the as-run log says why.
"""
from __future__ import annotations

import logging
from typing import Any

from marshmallow import ValidationError

from hub.access.actors import Actor
from hub.delivery import arbitration
from hub.delivery.as_run import RESUME_ISSUER, ResumeDue, Seen, observations, record
from hub.runtime import Runtime
from hub.store.as_run_tables import AsRunOutcome, AsRunSegment
from hub.store.db import utcnow
from hub.store.models import Command

log = logging.getLogger(__name__)

ARBITER = Actor(name=RESUME_ISSUER)  # every area: it only re-sends what an authorised issuer sent


def after_batch(rt: Runtime, heard: list[tuple[str, str, str, Any, Any]]) -> int:
    """`heard`: (kind, vendor, device id, value, heard at) of a committed ingest batch, in arrival
    order. Records the as-run segments and sends the resumes due; returns how many were sent.
    Never raises: the log must not cost the ingest an ack (a failure is logged)."""
    seen: list[Seen] = []
    vendors: dict[str, str] = {}
    for kind, vendor, did, value, at in heard:
        got = observations(kind, did, value, at)
        if got is not None:
            seen.append(got)
            vendors[did] = vendor
    if not seen:
        return 0
    try:
        hub_arbitrated = {did for did, v in vendors.items() if arbitration.by_hub(rt.plugins, v)}
        with rt.db.session() as s:
            due = record(s, seen, hub_arbitrated, utcnow())
        return send_resumes(rt, due)
    except Exception:  # noqa: BLE001 - the log is derived; the acks it came from are stored
        log.exception("as-run log: could not record %d observations", len(seen))
        return 0


def resume_key(due: ResumeDue) -> str:
    return f"resume:{due.command_id}:after:{due.interrupted_by}:{due.device_id}"


def send_resumes(rt: Runtime, dues: list[ResumeDue]) -> int:
    from hub.delivery.dispatch import DispatchError, submit  # dispatch imports this layer's modules
    from hub.schemas import CommandSchema

    sent = 0
    for due in dues:
        with rt.db.session() as s:
            orig = s.get(Command, due.command_id)
            s.expunge_all()
        why = None
        if orig is None:
            why = "its command no longer exists"
        elif orig.expires_at <= utcnow():
            why = "its slot closed before the hub could send it again"
        else:
            raw = {"verb": orig.verb, "params": dict(orig.params or {}), "priority": orig.priority,
                   "target": {"devices": [due.device_id]}, "expires_at": orig.expires_at.isoformat(),
                   "idempotency_key": resume_key(due)}
            if orig.content_id:
                raw["content_id"] = orig.content_id
            try:
                got = submit(rt, ARBITER, CommandSchema().load(raw))
                sent += 1
                _mark(rt, due, resumed_by=got.command.id)
                continue
            except (DispatchError, ValidationError) as exc:
                why = f"the hub could not send it again: {exc}"
        _mark(rt, due, skipped=why)
    return sent


def _mark(rt: Runtime, due: ResumeDue, resumed_by: str | None = None, skipped: str | None = None) -> None:
    with rt.db.session() as s:
        seg = s.get(AsRunSegment, due.segment_id)
        if seg is None:
            return
        if resumed_by is not None:
            if seg.follow_up == "resuming":
                seg.resumed_by = resumed_by
            return
        seg.follow_up = "skipped"
        s.add(AsRunSegment(device_id=seg.device_id, command_id=seg.command_id, verb=seg.verb,
                           content_id=seg.content_id, source=seg.source, priority=seg.priority, rank=seg.rank,
                           started_at=None, ended_at=utcnow(), outcome=AsRunOutcome.SKIPPED, reason=skipped,
                           interrupted_by=seg.interrupted_by, interrupted_by_class=seg.interrupted_by_class,
                           planned_start_at=seg.planned_start_at, planned_expires_at=seg.planned_expires_at,
                           programme_key=seg.programme_key, resume_of=due.command_id))
