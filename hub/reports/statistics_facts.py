"""What the statistics (hub.reports.statistics) count, read from what was recorded when it happened
— the as-run log, the deliveries and the devices' life (hub.store.statistics_tables) — each fact
placed in the area it was recorded in, so that deleting a content, a device or a user later
changes no figure. Rows from before those snapshots existed fall back to the live tables.

The definitions, as the report states them:
* a **segment** counts in the period its start lies in (a 23:30 Sunday segment is Sunday's, all of
  it); skipped rows (never played again) do not count;
* **minutes broadcast**: the sum of segment durations, per device (two loudspeakers playing the same
  10 minutes are 20 minutes); a segment still playing counts up to now;
* a **bulletin**: one item — a command (its resumes included) with its content — played on at least
  one device of a commune (the counting unit; a village's devices count for its commune). An
  item heard in three communes is three bulletins at the district: parents are sums;
* **uptime**: the time a device spent online or degraded over the time it existed in the period
  (registered, not yet removed, up to now); an area's is the device-time-weighted share;
* **deliveries**: those queued in the period that ended acked, failed or expired — the attempts;
  `unsupported` (the device cannot do the verb, nothing was sent) and `superseded` (replaced or
  cancelled before it went out) are not attempts;
* **emergency**: deliveries of emergency-class play, relay and LED commands queued in the period,
  except `unsupported` (a board asked to play); time-to-ack runs from queued to acked;
* **not played**: a play planned in the period whose delivery failed, expired, was superseded or was
  unsupported, or that was acked but never reported on air before its slot closed (as the as-run
  log's `not_played` rows).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from hub.arbiter_rule import PLAY_VERBS
from hub.capabilities import EMERGENCY
from hub.delivery.as_run_facts import origin_of
from hub.store.as_run_tables import AsRunOutcome, AsRunSegment
from hub.store.models import Command, Content, Delivery, DeliveryState, Device
from hub.store.statistics_tables import REMOVED, DeviceStateLog

UP_STATES = ("online", "degraded")
ATTEMPTS = (DeliveryState.ACKED, DeliveryState.FAILED, DeliveryState.EXPIRED)
ANNOUNCING_VERBS = (*PLAY_VERBS, "led_show")  # what an emergency reaches people with
NOT_PLAYED_STATES = (DeliveryState.FAILED, DeliveryState.EXPIRED, DeliveryState.SUPERSEDED, DeliveryState.UNSUPPORTED)
NEVER_ON_AIR = "acked, but never reported on air before its slot closed"


@dataclass(frozen=True)
class DeviceLife:
    device_id: str
    area_code: str | None  # its area at its last moment in the period
    life_s: float
    up_s: float


@dataclass(frozen=True)
class Played:
    device_id: str
    area_code: str | None
    item: str  # the command it plays as planned (a resume counts as its original)
    content_id: str | None
    priority: str
    category: str | None
    origin: str | None
    minutes: float


@dataclass(frozen=True)
class Sent:
    area_code: str | None
    priority: str
    state: str
    emergency: bool
    ack_s: float | None  # queued → acked, for acked ones


@dataclass(frozen=True)
class NotPlayed:
    device_id: str
    area_code: str | None
    command_id: str
    content_id: str | None
    priority: str
    planned_at: datetime
    delivery_state: str
    reason: str | None


def lives(s: Session, start: datetime, end: datetime) -> Iterator[DeviceLife]:
    """Each device that existed in [start, end), with its time up and its time alive (the caller
    ends the period at now: time to come is neither up nor down)."""
    before = (select(DeviceStateLog.device_id, func.max(DeviceStateLog.id).label("last"))
              .where(DeviceStateLog.at < start).group_by(DeviceStateLog.device_id).subquery())
    rows = list(s.execute(select(DeviceStateLog.device_id, DeviceStateLog.area_code, DeviceStateLog.at,
                                 DeviceStateLog.state)
                          .where(or_(DeviceStateLog.id.in_(select(before.c.last)),
                                     and_(DeviceStateLog.at >= start, DeviceStateLog.at < end)))
                          .order_by(DeviceStateLog.device_id, DeviceStateLog.at, DeviceStateLog.id)))
    by_device: dict[str, list[tuple[str | None, datetime, str]]] = {}
    for did, area, at, state in rows:
        by_device.setdefault(did, []).append((area, max(at, start), state))
    for did, changes in by_device.items():
        life = up = 0.0
        area: str | None = None
        for i, (a, at, state) in enumerate(changes):
            until = changes[i + 1][1] if i + 1 < len(changes) else end
            span = max(0.0, (until - at).total_seconds())
            if state == REMOVED or span <= 0:
                continue
            life += span
            up += span if state in UP_STATES else 0.0
            area = a
        if life > 0:
            yield DeviceLife(did, area, life, up)


def played(s: Session, start: datetime, end: datetime, now: datetime) -> Iterator[Played]:
    q = (select(AsRunSegment, Device.area_code, Content)
         .outerjoin(Device, Device.id == AsRunSegment.device_id)
         .outerjoin(Content, Content.id == AsRunSegment.content_id)
         .where(AsRunSegment.started_at >= start, AsRunSegment.started_at < end,
                AsRunSegment.outcome != AsRunOutcome.SKIPPED)
         .order_by(AsRunSegment.started_at, AsRunSegment.id))
    origins: dict[str, str] = {}
    for seg, live_area, content in s.execute(q):
        minutes = ((seg.ended_at or now) - seg.started_at).total_seconds() / 60
        category, origin = seg.content_category, seg.content_origin
        if seg.area_code is None and content is not None:  # a row from before the snapshots
            category = content.category
            origin = origins.setdefault(content.id, origin_of(s, content))
        yield Played(seg.device_id, seg.area_code or live_area, seg.resume_of or seg.command_id, seg.content_id,
                     seg.priority, category, origin, max(0.0, minutes))


def sent(s: Session, start: datetime, end: datetime) -> Iterator[Sent]:
    q = (select(Delivery.area_code, Device.area_code, Command.priority, Command.verb, Delivery.state,
                Delivery.queued_at, Delivery.finished_at)
         .join(Command, Command.id == Delivery.command_id)
         .outerjoin(Device, Device.id == Delivery.device_id)
         .where(Delivery.queued_at >= start, Delivery.queued_at < end))
    for area, live_area, priority, verb, state, queued, finished in s.execute(q):
        ack_s = (finished - queued).total_seconds() if state == DeliveryState.ACKED and finished else None
        yield Sent(area or live_area, priority, state,
                   priority == EMERGENCY and verb in ANNOUNCING_VERBS and state != DeliveryState.UNSUPPORTED, ack_s)


def not_played(s: Session, start: datetime, end: datetime, now: datetime) -> Iterator[NotPlayed]:
    planned = func.coalesce(Command.start_at, Command.created_at)
    aired = select(AsRunSegment.id).where(AsRunSegment.device_id == Delivery.device_id,
                                          or_(AsRunSegment.command_id == Delivery.command_id,
                                              AsRunSegment.resume_of == Delivery.command_id)).exists()
    q = (select(Delivery, Command, Device.area_code, planned)
         .join(Command, Command.id == Delivery.command_id)
         .outerjoin(Device, Device.id == Delivery.device_id)
         .where(Command.verb.in_(PLAY_VERBS), planned >= start, planned < end,
                or_(Delivery.state.in_(NOT_PLAYED_STATES),
                    and_(Delivery.state == DeliveryState.ACKED, Command.expires_at <= now, ~aired)))
         .order_by(Delivery.device_id, planned, Delivery.id))
    for d, cmd, live_area, at in s.execute(q):
        yield NotPlayed(d.device_id, d.area_code or live_area, cmd.id, cmd.content_id, cmd.priority, at, d.state,
                        d.reason if d.state != DeliveryState.ACKED else NEVER_ON_AIR)
