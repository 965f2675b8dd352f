"""The device health model: the operating state (online, degraded, offline) a device is in,
separate from whether an administrator enabled it, and the transitions between them.

A device goes offline when its link drops (MQTT last will, a poll that gets no answer), when
it stops heartbeating for `heartbeat_timeout_s`, or after `failure_threshold` deliveries in a
row failed on the link or expired unanswered. It is degraded while it reports faults. Each
transition is stored (device_events, and device_state_log with the device's area, which outlives
the device for uptime reports), logged once and published as an event; repeating the same state
changes nothing.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from hub import events
from hub.store.batching import chunks
from hub.store.models import Device, DeviceEvent, DeviceStatus
from hub.store.statistics_tables import DeviceStateLog

log = logging.getLogger("hub.fleet.health")

OPERATING_STATES = ("unknown", "online", "degraded", "offline")


@dataclass(frozen=True)
class HealthPolicy:
    heartbeat_timeout_s: float = 180.0
    failure_threshold: int = 3


@dataclass(frozen=True)
class StateChange:
    device_id: str
    state: str
    previous: str
    reason: str | None
    at: datetime

    def as_event(self) -> events.DeviceStateChanged:
        return events.device_state_changed(self.device_id, self.state, self.previous, self.reason, self.at)


def reported_verdict(online: bool | None, faults: list[Any] | None) -> tuple[str, str | None]:
    """What a device's own report (its online flag and faults) says about its state."""
    if not online:
        return "offline", "device reports itself offline"
    if faults:
        reason = "faults: " + ", ".join(map(str, faults))
        # state_reason and device_events.reason hold 300 characters; PostgreSQL refuses more, and
        # a device listing many faults must not make its report unstorable
        return "degraded", reason if len(reason) <= 300 else reason[:297] + "..."
    return "online", None


def reported_state(row: DeviceStatus) -> tuple[str, str | None]:
    """What a device's own report says about its state."""
    return reported_verdict(row.online, row.faults)


def state_values(change: StateChange) -> dict[str, Any]:
    """The device_status columns a transition sets (coming online also clears the failure count)."""
    values: dict[str, Any] = {"operating_state": change.state, "state_reason": change.reason,
                              "state_since": change.at}
    if change.state == "online":
        values["consecutive_failures"] = 0
    return values


def shown_online(online: bool | None, operating_state: str | None) -> bool:
    """`online` as the API shows it: one truth beside `operating_state`. The stored flag stays the
    device's own last word (its report or presence), which the ingest judges reports by; a device
    the hub took offline (heartbeat timeout, failing deliveries) is not shown online."""
    return bool(online) and operating_state != "offline"


def log_change(change: StateChange) -> None:
    if change.state == "offline":
        log.warning("device %s went offline: %s", change.device_id, change.reason)
    elif change.previous == "offline":
        log.info("device %s is back %s", change.device_id, change.state)
    elif change.state == "degraded":
        log.warning("device %s degraded: %s", change.device_id, change.reason)


def record(session: Session, changes: list[StateChange]) -> None:
    """Store the history rows of transitions already applied to device_status, in one
    statement for the batch, and log each once."""
    if not changes:
        return
    session.connection().execute(DeviceEvent.__table__.insert(), [
        {"device_id": c.device_id, "at": c.at, "state": c.state, "previous": c.previous, "reason": c.reason}
        for c in changes])
    areas: dict[str, str] = {}
    for chunk in chunks(sorted({c.device_id for c in changes})):
        areas.update(session.execute(select(Device.id, Device.area_code).where(Device.id.in_(chunk))).all())
    session.connection().execute(DeviceStateLog.__table__.insert(), [
        {"device_id": c.device_id, "area_code": areas.get(c.device_id), "at": c.at, "state": c.state}
        for c in changes])
    for c in changes:
        log_change(c)


def transition(session: Session, row: DeviceStatus, state: str, reason: str | None,
               now: datetime) -> StateChange | None:
    previous = row.operating_state or "unknown"
    if previous == state:
        return None
    change = StateChange(row.device_id, state, previous, reason, now)
    for k, v in state_values(change).items():
        setattr(row, k, v)
    session.add(DeviceEvent(device_id=row.device_id, at=now, state=state, previous=previous, reason=reason))
    area = session.scalar(select(Device.area_code).where(Device.id == row.device_id))
    session.add(DeviceStateLog(device_id=row.device_id, area_code=area, at=now, state=state))
    log_change(change)
    return change


def sweep(session: Session, policy: HealthPolicy, now: datetime) -> list[StateChange]:
    """Devices whose heartbeat stopped, or whose deliveries keep failing, go offline."""
    changes = []
    silent_since = now - timedelta(seconds=policy.heartbeat_timeout_s)
    rows = session.execute(
        select(DeviceStatus, Device.capabilities).join(Device, Device.id == DeviceStatus.device_id).where(
            DeviceStatus.operating_state != "offline",
            or_(DeviceStatus.last_seen_at < silent_since,
                DeviceStatus.consecutive_failures >= policy.failure_threshold))).all()
    for row, caps in rows:
        if row.consecutive_failures >= policy.failure_threshold:
            reason = f"{row.consecutive_failures} deliveries in a row failed or went unanswered"
        elif "status.heartbeat" in (caps or ()) and row.last_seen_at is not None:
            reason = f"no heartbeat for {policy.heartbeat_timeout_s:g} s"
        else:
            continue
        change = transition(session, row, "offline", reason, now)
        if change:
            changes.append(change)
    return changes


def lock_status_rows(session: Session, device_ids: Iterable[str]) -> None:
    """On PostgreSQL, lock these devices' device_status rows now, in device id order.

    Every transaction that updates several device_status rows takes their locks this way first
    (the ingest's writer, the sweeper's failure count), so two of them can never each hold a row
    the other waits for. An UPDATE … WHERE device_id IN (…) alone locks in whatever order its
    plan scans the table; 2,000 rows expiring at once against the writer's status updates
    deadlocked that way. `SELECT … ORDER BY … FOR UPDATE` sorts first, then locks row by row.
    SQLite locks the whole database per write transaction: nothing to order there."""
    if session.get_bind().dialect.name == "sqlite":
        return
    ids = sorted(set(device_ids))
    for chunk in chunks(ids):
        session.execute(select(DeviceStatus.device_id).where(DeviceStatus.device_id.in_(chunk))
                        .order_by(DeviceStatus.device_id).with_for_update()).all()


def count_failures(session: Session, device_ids: list[str]) -> None:
    """Deliveries that failed on the link or expired unanswered count towards going offline."""
    device_ids = sorted(set(device_ids))  # one count per device and sweep, as the IN list always gave
    lock_status_rows(session, device_ids)
    for chunk in chunks(device_ids):
        session.execute(update(DeviceStatus).where(DeviceStatus.device_id.in_(chunk))
                        .values(consecutive_failures=DeviceStatus.consecutive_failures + 1)
                        .execution_options(synchronize_session=False))


def uptime(session: Session, device_id: str, start: datetime, end: datetime) -> float:
    """Share of [start, end) the device spent online or degraded, from its event history."""
    events = list(session.scalars(select(DeviceEvent).where(DeviceEvent.device_id == device_id,
                                                            DeviceEvent.at < end).order_by(DeviceEvent.at,
                                                                                           DeviceEvent.id)))
    state, t, up = "unknown", start, 0.0
    for ev in events:
        at = max(ev.at, start)
        if state in ("online", "degraded") and at > t:
            up += (at - t).total_seconds()
        state, t = ev.state, max(at, t)
    if state in ("online", "degraded"):
        up += (end - t).total_seconds()
    total = (end - start).total_seconds()
    return up / total if total > 0 else 0.0
