"""Hub-side priority arbitration for devices without their own (a plugin's
`traits.priority == "hub"`: every "play now" replaces what plays).

The rule is hub.arbiter_rule's (emergency > live/relay > priority > normal > idle); here the hub
applies it for such devices:

* A `play` or `relay_start` to such a device is **held** while an item it may not interrupt is
  known to be playing on it (arbiter_rule.decide says WAIT: a lower rank, or an emergency behind
  an emergency): that play's delivery is in flight (`sent`), or it was confirmed and the device
  has not reported since, or its status still shows it playing. A higher rank is sent at once
  (it pre-empts; the device replaces), as is a newer item of the same rank (it replaces).
* A held delivery stays `queued`, its reason saying `held: …`. When the device's status shows
  the item ended, the ingest enqueues the held ones again; the job checks once more, so the
  highest rank waiting goes first (workers take the emergency queue first).
* What a higher item interrupted is sent again when it ends, while its slot is open
  (hub.delivery.resume, from the as-run log).
* A `stop` sent to the device ends the plays the hub holds for it (`superseded`), as a device
  with its own queue clears it on stop.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub import arbiter_rule
from hub.store.db import utcnow
from hub.store.models import Command, Delivery, DeliveryState, DeviceStatus
from hub.delivery.readback import _is_source
from hub.vendor_traits import traits_of

log = logging.getLogger(__name__)

PLAYS = ("play", "relay_start")
AUDIO = ("play", "relay_start", "stop", "relay_stop")
HELD = "held: "


def by_hub(plugins: Any, vendor: str) -> bool:
    """Whether the hub arbitrates priority for this vendor's devices."""
    adapter = plugins.vendors().get(vendor)
    return adapter is not None and traits_of(adapter.manifest).priority == "hub"


def playing(session: Session, device_id: str) -> Command | None:
    """The play command known to be playing on the device, or None."""
    row = session.execute(
        select(Delivery, Command).join(Command, Command.id == Delivery.command_id)
        .where(Delivery.device_id == device_id, Delivery.state.in_((DeliveryState.SENT, DeliveryState.ACKED)),
               Command.verb.in_(AUDIO))
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc()).limit(1)).first()
    if row is None or row[1].verb not in PLAYS:
        return None  # nothing played, or the last audio command was a stop
    d, cmd = row
    if d.state == DeliveryState.SENT:
        return cmd  # in flight: presumed to start
    st = session.get(DeviceStatus, device_id)
    if st is None or st.last_seen_at is None or d.finished_at is None or st.last_seen_at <= d.finished_at:
        return cmd  # confirmed, and the device has said nothing since
    if st.activity == "relaying" and cmd.verb == "relay_start":
        return cmd
    if st.activity == "playing" and _is_source(st.source, cmd.content):
        return cmd
    return None


def blocked_by(session: Session, device_id: str, verb: str, priority: str) -> Command | None:
    """The item playing on the device that a (verb, priority) item must wait for, or None."""
    cur = playing(session, device_id)
    if cur is None or arbiter_rule.decide((verb, priority), (cur.verb, cur.priority)) != arbiter_rule.WAIT:
        return None
    return cur


def admit(session: Session, plugins: Any, vendor: str, cmd: Command, rows: list[Any]) -> list[Any]:
    """The (delivery, device) rows of a job that may be sent now; the others are held."""
    if not rows or cmd.verb not in (*PLAYS, "stop") or not by_hub(plugins, vendor):
        return rows
    if cmd.verb == "stop":
        ids = [dev.id for _, dev in rows]
        session.execute(update(Delivery).where(Delivery.device_id.in_(ids), Delivery.state == DeliveryState.QUEUED,
                                               Delivery.reason.like(f"{HELD}%"))
                        .values(state=DeliveryState.SUPERSEDED, finished_at=utcnow(),
                                reason=f"superseded by stop {cmd.id}")
                        .execution_options(synchronize_session=False))
        return rows
    out = []
    for d, dev in rows:
        higher = blocked_by(session, dev.id, cmd.verb, cmd.priority)
        if higher is None:
            out.append((d, dev))
        else:
            d.reason = (f"{HELD}a {higher.priority} bulletin (command {higher.id}) is playing and the device has "
                        "no priority handling of its own; sent when it ends")
            # Never handed over: give the claim back (hub.delivery.claims), so the job the ingest enqueues
            # when the higher play ends may claim it, and a newer command may supersede it.
            d.claimed_at = d.claimed_by = None
    return out


def releasable(session: Session, device_ids: Iterable[str]) -> list[Command]:
    """Commands with plays held for these devices that nothing outranks any more."""
    ids = list(device_ids)
    if not ids:
        return []
    rows = session.execute(select(Delivery.device_id, Command).join(Command, Command.id == Delivery.command_id)
                           .where(Delivery.device_id.in_(ids), Delivery.state == DeliveryState.QUEUED,
                                  Delivery.reason.like(f"{HELD}%"))).all()
    out: dict[str, Command] = {}
    for device_id, cmd in rows:
        if blocked_by(session, device_id, cmd.verb, cmd.priority) is None:
            out[cmd.id] = cmd
    # highest rank first, then the oldest (two emergencies: in the order they came)
    return sorted(out.values(), key=lambda c: (-arbiter_rule.rank(c.verb, c.priority), c.created_at))


def release(rt: Any, commands: list[Command]) -> int:
    """Enqueue the held commands again. A second job for the same rows is harmless: a job sends
    only rows still queued, and checks the arbitration again."""
    from hub.delivery.dispatch import _jobs, _queued_by_vendor  # the job-building the dispatcher uses

    n = 0
    for cmd in commands:
        jobs = _jobs(rt, cmd, _queued_by_vendor(rt, cmd.id))
        if jobs:
            rt.queue(cmd.priority).enqueue_many(jobs)
            n += len(jobs)
    return n
