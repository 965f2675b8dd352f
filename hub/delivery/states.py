"""Delivery state transitions. Each is a conditional UPDATE, so a row that already reached a
terminal state never changes again, whoever (job, ingest, sweeper) gets there second."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from hub.store.batching import chunks
from hub.store.db import utcnow
from hub.store.models import ACTIVE_STATES, Command, Delivery, DeliveryState

_t = Delivery.__table__
# executemany cannot expand IN lists, so "still active" is spelt as an OR of literals.
_ACTIVE = or_(*[_t.c.state == s for s in ACTIVE_STATES])
# What a device's answer may end: a row handed to it. `sent`, or `queued` once a job claimed it
# (hub.delivery.claims; the answer can beat the worker's "sent"). Never `scheduled` nor unclaimed `queued`:
# a device cannot have done a command it was not sent.
_ANSWERABLE = or_(_t.c.state == DeliveryState.SENT,
                  and_(_t.c.state == DeliveryState.QUEUED, _t.c.claimed_at.is_not(None)))


def mark_sent(session: Session, ids: Sequence[int], now: datetime | None = None) -> None:
    """Rows handed to the transport at `now`: `queued` ones become `sent`. A row whose ack (or a
    cancel) got there first keeps its state but still gets its sent_at, so that every row that
    went out says when — start-time jitter is sent_at − start_at. An ack that won the race has
    already written its own arrival as an upper bound (finish_by_device); the handover time,
    taken before the send and so never later, replaces it."""
    if ids:
        at = now or utcnow()
        session.execute(update(Delivery).where(Delivery.id.in_(ids), Delivery.state == DeliveryState.QUEUED)
                        .values(state=DeliveryState.SENT, sent_at=at).execution_options(synchronize_session=False))
        session.execute(update(Delivery).where(Delivery.id.in_(ids),
                                               or_(Delivery.sent_at.is_(None), Delivery.sent_at > at))
                        .values(sent_at=at).execution_options(synchronize_session=False))


def finish(session: Session, items: Iterable[tuple[int, str, str | None, dict[str, Any] | None]],
           now: datetime | None = None) -> int:
    """End rows by id: (delivery id, terminal state, reason, result). Returns rows changed."""
    params = [{"b_id": i, "b_state": st, "b_reason": (r or None) and r[:500], "b_result": res}
              for i, st, r, res in items]
    if not params:
        return 0
    stmt = (_t.update().where(_t.c.id == bindparam("b_id"), _ACTIVE)
            .values(state=bindparam("b_state"), reason=bindparam("b_reason"), result=bindparam("b_result"),
                    finished_at=now or utcnow()))
    return session.connection().execute(stmt, params).rowcount or 0


def finish_by_device(session: Session, items: Iterable[tuple[str, str, str, str | None, dict[str, Any] | None]],
                     now: datetime | None = None) -> int:
    """End rows by (command id, device id, state, reason, result), as acks arrive; only rows the
    device was handed (_ANSWERABLE) change. A device that answered was handed the command by
    now: a row whose sending job has not yet written its sent_at gets the answer's arrival, so
    no answered row is ever seen without one (mark_sent then puts the earlier handover time)."""
    # Plain acks (no reason, no result) of one command end with one UPDATE per IN_LIST_MAX devices
    # instead of one statement execution per device; the rest go through executemany.
    items = list(items)
    # a device answering twice differently in one batch keeps the first-answer-wins order
    mixed = {(c, d) for c, d, st, r, res in items if not (st == DeliveryState.ACKED and not r and res is None)}
    plain: dict[str, list[str]] = {}
    params = []
    for c, d, st, r, res in items:
        if st == DeliveryState.ACKED and not r and res is None and (c, d) not in mixed:
            plain.setdefault(c, []).append(d)
        else:
            params.append({"b_cmd": c, "b_dev": d, "b_state": st, "b_reason": (r or None) and r[:500],
                           "b_result": res})
    changed = 0
    at = now or utcnow()
    for c, devs in plain.items():
        for chunk in chunks(devs):
            changed += session.connection().execute(
                _t.update().where(_t.c.command_id == c, _t.c.device_id.in_(chunk), _ANSWERABLE)
                .values(state=DeliveryState.ACKED, reason=None, result=None, finished_at=at,
                        sent_at=func.coalesce(_t.c.sent_at, at))).rowcount or 0
    if not params:
        return changed
    stmt = (_t.update().where(_t.c.command_id == bindparam("b_cmd"), _t.c.device_id == bindparam("b_dev"),
                              _ANSWERABLE)
            .values(state=bindparam("b_state"), reason=bindparam("b_reason"), result=bindparam("b_result"),
                    finished_at=at, sent_at=func.coalesce(_t.c.sent_at, at)))
    return changed + (session.connection().execute(stmt, params).rowcount or 0)


def job_tally(*extra: str) -> dict[str, int]:
    """What a sending job returns: how many rows it ended in each state (plain str keys: the result
    is stored by rq and printed), plus `extra` counters."""
    ended = (DeliveryState.SENT, DeliveryState.ACKED, DeliveryState.FAILED, DeliveryState.EXPIRED)
    return dict.fromkeys([s.value for s in ended] + list(extra), 0)


NEVER_RELEASED = "start_at passed and no scheduler released it before expires_at (is `hub scheduler` running?)"


def expire_due(session: Session, now: datetime | None = None) -> list[str]:
    """Rows still waiting when their command's expires_at has passed end `expired`.
    Returns the ids of the devices whose rows expired (one entry per row) — except rows that were
    still `scheduled`: those never reached the device, so they say nothing about its link."""
    now = now or utcnow()
    due = session.execute(select(Delivery.id, Delivery.device_id, Delivery.state)
                          .join(Command, Command.id == Delivery.command_id)
                          .where(Delivery.state.in_(ACTIVE_STATES), Command.expires_at <= now)
                          # PostgreSQL: lock the rows now, in id order, and pass over those an ack is
                          # being written to (they end acked, or expire at the next sweep), so the
                          # sweeper never waits on the ingest's writer while holding rows it needs.
                          .order_by(Delivery.id).with_for_update(of=Delivery, skip_locked=True)).all()
    expired: list[str] = []
    for state in ACTIVE_STATES:
        rows = [(d, dev) for d, dev, st in due if st == state]
        why = NEVER_RELEASED if state == DeliveryState.SCHEDULED else "no acknowledgement before expires_at"
        for chunk in chunks(rows):
            session.execute(update(Delivery).where(Delivery.id.in_([d for d, _ in chunk]), Delivery.state == state)
                            .values(state=DeliveryState.EXPIRED, finished_at=now, reason=why)
                            .execution_options(synchronize_session=False))
            if state != DeliveryState.SCHEDULED:
                expired.extend(dev for _, dev in chunk)
    return expired
