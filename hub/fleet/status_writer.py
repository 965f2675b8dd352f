"""Status and presence reports of one ingest batch, written with a few Core statements.

The ingest writer used to load a DeviceStatus ORM object per device and let the session flush
one UPDATE per row; that was half of the ingest's CPU (bench/: status ingest). Here a batch costs
one select of the stored rows, one executemany UPDATE (or INSERT for devices never seen) per
shape of row, and one INSERT of the transitions' history.

Rules, per device, applied in arrival order:
* a status report older (`reported_at`) than the newest one stored or already applied is
  ignored: with several ingest processes on a shared subscription, a device's reports reach
  them out of order. The stored row is guarded in SQL too, so that two processes cannot write
  an older report last whatever the timing.
* several reports of a device in one batch are coalesced: each is applied over the previous one
  as before, but only the result is written, once.
* the health verdict (hub.fleet.health) is taken after the device's last item of the batch, as before.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from hub.fleet import health
from hub.schemas.status import REPORTED_FIELDS
from hub.store.batching import chunks
from hub.store.models import DeviceStatus

STATUS_FIELDS = REPORTED_FIELDS  # what a status report may set
_t = DeviceStatus.__table__
_c = _t.c


def _default(column: Any) -> Any:
    d = column.default
    if d is None:
        return None
    return d.arg(None) if d.is_callable else d.arg  # a callable default (list) takes the execution context


# A row nobody has written yet, as the ORM model's defaults make it.
_NEW_ROW: dict[str, Any] = {c.name: _default(c) for c in _t.columns if c.name != "device_id"}


@dataclass
class Report:
    """One item from a device: `kind` is status (value: a DeviceStatusSchema dict) or presence
    (value: bool); `at` is when the hub heard it."""

    device_id: str
    kind: str
    value: Any
    at: datetime


@dataclass
class _Stored:
    reported_at: datetime | None
    online: bool
    faults: list[Any]
    operating_state: str


@dataclass
class _Net:
    """What a batch says about one device once its items are applied in order."""

    values: dict[str, Any] = field(default_factory=dict)
    guard: datetime | None = None  # reported_at of the newest status applied
    verdict: tuple[str, str | None, datetime] | None = None
    statuses: int = 0


@dataclass
class Outcome:
    changes: list[health.StateChange] = field(default_factory=list)
    status: int = 0  # status reports applied (written, or superseded by a newer one in the batch)
    presence: int = 0
    coalesced: int = 0  # of `status`, those superseded in the batch and never written on their own
    stale: int = 0  # status reports ignored as older than what the device had already reported


def _older(a: datetime | None, b: datetime | None) -> bool:
    """Whether reported_at `a` is strictly before `b`; unknown or incomparable times are not."""
    if a is None or b is None:
        return False
    try:
        return a < b
    except TypeError:  # naive against aware: not a verdict this module can make
        return False


def _stored(session: Session, ids: list[str]) -> dict[str, _Stored]:
    out: dict[str, _Stored] = {}
    conn = session.connection()
    q = select(_c.device_id, _c.reported_at, _c.online, _c.faults, _c.operating_state)
    for chunk in chunks(ids):
        for did, reported_at, online, faults, state in conn.execute(q.where(_c.device_id.in_(chunk))):
            out[did] = _Stored(reported_at, bool(online), faults or [], state or "unknown")
    return out


def _fold(reports: list[Report], stored: dict[str, _Stored], out: Outcome) -> dict[str, _Net]:
    nets: dict[str, _Net] = {}
    state: dict[str, tuple[datetime | None, bool, list[Any]]] = {}  # newest reported_at, online, faults
    for r in reports:
        net = nets.get(r.device_id)
        if net is None:
            net = nets[r.device_id] = _Net()
            st = stored.get(r.device_id)
            state[r.device_id] = (st.reported_at, st.online, st.faults) if st else (None, False, [])
        newest, online, faults = state[r.device_id]
        if r.kind == "status":
            reported_at = r.value.get("reported_at")
            if _older(reported_at, newest):
                out.stale += 1
                continue
            out.status += 1
            net.statuses += 1
            for k in STATUS_FIELDS:
                if k in r.value:
                    net.values[k] = r.value[k]
            if reported_at is not None:
                newest = net.guard = reported_at
            online = bool(r.value.get("online", online))
            faults = r.value.get("faults", faults)
            if online:  # a gateway reporting a device offline has not seen it
                net.values["last_seen_at"] = r.at
            net.verdict = (*health.reported_verdict(online, faults), r.at)
        else:
            out.presence += 1
            online = bool(r.value)
            net.values["online"] = online
            if online:
                net.values["last_seen_at"] = r.at
                net.verdict = (*health.reported_verdict(online, faults), r.at)
            else:
                net.verdict = ("offline", "link lost (the transport reported the device gone)", r.at)
        state[r.device_id] = (newest, online, faults)
    for net in nets.values():
        out.coalesced += max(0, net.statuses - 1)
    return nets


def _update(session: Session, keys: tuple[str, ...], guarded: bool, rows: list[dict[str, Any]]) -> int:
    """One executemany UPDATE for rows setting the same columns; returns rows changed."""
    where = [_c.device_id == bindparam("b_id")]
    if guarded:  # never write a report older than the one stored (another ingest process was faster)
        # the value written is the guard: one bound parameter, converted once per row
        where.append(or_(_c.reported_at.is_(None), _c.reported_at <= bindparam("v_reported_at")))
    stmt = _t.update().where(*where).values({k: bindparam(f"v_{k}") for k in keys})
    return session.connection().execute(stmt, rows).rowcount or 0


def _skipped(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Of guarded rows just written, those the guard refused: a newer report is stored."""
    guard = {r["b_id"]: r["v_reported_at"] for r in rows}
    ids = list(guard)
    out: set[str] = set()
    conn = session.connection()
    for chunk in chunks(ids):
        for did, reported_at in conn.execute(select(_c.device_id, _c.reported_at)
                                             .where(_c.device_id.in_(chunk))):
            if _older(guard[did], reported_at):
                out.add(did)
    return out


def store(session: Session, reports: list[Report], answered: Iterable[str] = ()) -> Outcome:
    """Apply a batch's status and presence reports (arrival order) and return what happened.
    Devices in `answered` (they acked a command in this batch) are not failing."""
    out = Outcome()
    if not reports:
        return out
    ids = list(dict.fromkeys(r.device_id for r in reports))
    stored = _stored(session, ids)
    nets = _fold(reports, stored, out)
    answered = set(answered)
    changes: dict[str, health.StateChange] = {}
    inserts: list[dict[str, Any]] = []
    updates: dict[tuple[tuple[str, ...], bool], list[dict[str, Any]]] = {}
    for did, net in nets.items():
        values = net.values
        if not values and did not in answered:
            continue  # every report was stale
        if did in answered:
            values["consecutive_failures"] = 0
        st = stored.get(did)
        if net.verdict is not None:
            state, reason, at = net.verdict
            previous = st.operating_state if st else "unknown"
            if state != previous:
                change = changes[did] = health.StateChange(did, state, previous, reason, at)
                values.update(health.state_values(change))
        if st is None:
            inserts.append({"device_id": did, **_NEW_ROW, **values})
            continue
        guarded = net.guard is not None  # then values["reported_at"] is net.guard
        row = {f"v_{k}": v for k, v in values.items()}
        row["b_id"] = did
        updates.setdefault((tuple(sorted(values)), guarded), []).append(row)
    if inserts:
        session.connection().execute(_t.insert(), inserts)
    for (keys, guarded), rows in updates.items():
        if _update(session, keys, guarded, rows) < len(rows) and guarded:
            for did in _skipped(session, rows):  # lost a race to a newer report: as if stale
                changes.pop(did, None)
                n = nets[did].statuses
                out.stale += n
                out.status -= n
                out.coalesced -= max(0, n - 1)
    out.changes = list(changes.values())
    health.record(session, out.changes)
    return out
