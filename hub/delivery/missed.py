"""A scheduled slot that passed while the hub was not running: recorded, never sent.

`submit` refuses a start_at in the past (an operator meant "now" or made a mistake). A slot the
hub itself planned — a programme's occurrence — that went by entirely during an outage is another
matter: it must not be sent late (its time is over), nor vanish, so that "scheduled but not
played" shows per device. `record_missed` writes the command with its planned times and one
delivery per selected device, each ended `expired` with a reason that says the hub was not running,
under the same issuer and idempotency key the command would have had: a second scheduler, or the
same one again, replays it instead of writing another.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from hub.access import audit
from hub.access.actors import Actor
from hub.delivery.claims import issuer_scope
from hub.delivery.dispatch import DispatchError, Submitted, _existing, _replay, counts, request_hash
from hub.fleet.targeting import TargetError, resolve
from hub.store.db import utcnow
from hub.store.models import Command, Delivery, DeliveryState
from hub.runtime import Runtime


def record_missed(rt: Runtime, actor: Actor, data: dict[str, Any], reason: str,
                  now: datetime | None = None) -> Submitted:
    """Record a command (CommandSchema().load output, with its planned start_at and expires_at)
    whose time passed unsent: every selected device's delivery ends `expired` with `reason`.
    Only for an actor that issues commands on the hub's behalf (the programme scheduler): the
    caller has checked the slot's target when the programme was saved."""
    now = now or utcnow()
    digest = request_hash(data)
    key = data.get("idempotency_key")
    if not key or data.get("start_at") is None or data.get("expires_at") is None:
        raise DispatchError("idempotency_key", "a missed slot needs its idempotency key, start_at and expires_at")
    with rt.db.session() as session:
        prior = _existing(session, actor, key)
        if prior is not None:
            return _replay(session, prior, digest)
        try:
            devices = resolve(session, data["target"])
        except TargetError as exc:
            raise DispatchError(exc.field, exc.message) from None
        target = json.loads(json.dumps(data["target"], default=str))
        cmd = Command(id=uuid.uuid4().hex, verb=data["verb"], params=data.get("params") or {},
                      content_id=data.get("content_id"), priority=data.get("priority") or "normal",
                      expires_at=data["expires_at"], start_at=data["start_at"], idempotency_key=key,
                      request_hash=digest, issuer=actor.name, issuer_id=actor.user_id, target=target,
                      created_at=now, total=len(devices), issuer_scope=issuer_scope(session, actor),
                      # nothing left for the release loop: the slot is over, its rows are final
                      released_at=now)
        session.add(cmd)
        try:
            session.flush()
        except IntegrityError:  # another scheduler recorded it at the same moment
            session.rollback()
            prior = _existing(session, actor, key)
            if prior is None:
                raise
            return _replay(session, prior, digest)
        if devices:
            session.execute(Delivery.__table__.insert(), [
                {"command_id": cmd.id, "device_id": d.id, "vendor": d.vendor, "state": DeliveryState.EXPIRED,
                 "reason": reason[:500], "attempts": 0, "queued_at": now, "finished_at": now,
                 "area_code": d.area_code} for d in devices])
        audit.record(session, actor, "command.missed", "command", cmd.id,
                     {"verb": cmd.verb, "start_at": cmd.start_at.isoformat(), "devices": len(devices),
                      "reason": reason}, areas={d.area_code for d in devices} | set(target.get("areas") or ()))
    with rt.db.session() as session:
        return Submitted(cmd, True, counts(session, cmd.id))
