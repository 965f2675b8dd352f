"""Reading the as-run log (proof of play) for people: the segments devices played
(hub.store.as_run_tables, written by hub.delivery.as_run) with each device's name and commune and
the planned slot beside them, plus one `not_played` row per planned play that never reached the
air — its delivery failed, expired, was superseded or cancelled, or the device accepted it and
never reported playing it before its slot closed — so "scheduled but not played" shows per device.

Times are given in the province's time (Asia/Ho_Chi_Minh, +07:00). Both the API (GET /api/as-run)
and the command line (`hub as-run`) read through `rows`.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.orm import Session

from hub.arbiter_rule import PLAY_VERBS, rank_name
from hub.broadcast.programmes import LOCAL_TZ
from hub.delivery.as_run import PROGRAMME_ISSUER, resume_origin
from hub.fleet.areas import under_any
from hub.store.as_run_tables import AsRunSegment
from hub.store.batching import chunks
from hub.store.db import utcnow
from hub.store.models import Area, Command, Delivery, DeliveryState, Device

NOT_PLAYED = "not_played"
COMMUNE_TYPES = ("commune", "ward", "township", "special_zone")  # the level a commune's loudspeakers serve
NEVER_ON_AIR = "the device accepted it but never reported playing it before its slot closed"
MAX_ROWS = 10_000  # one answer; narrow the filters for more


def local(dt: datetime | None) -> str | None:
    return dt.astimezone(LOCAL_TZ).isoformat() if dt is not None else None


def _communes(session: Session, areas: Iterable[Area]) -> dict[str, str]:
    """Area code → the name of the commune it lies in (itself, or its nearest commune ancestor)."""
    areas = list({a.code: a for a in areas}.values())
    codes = {c for a in areas for c in a.path.strip("/").split("/")}
    named: dict[str, tuple[int, str]] = {}
    for chunk in chunks(sorted(codes)):
        for code, name, level in session.execute(select(Area.code, Area.name, Area.level)
                                                 .where(Area.code.in_(chunk), Area.type.in_(COMMUNE_TYPES))):
            named[code] = (level, name)
    out = {}
    for a in areas:
        found = [named[c] for c in a.path.strip("/").split("/") if c in named]
        out[a.code] = max(found)[1] if found else a.name
    return out


def _where(device_id: str | None, area_path: str | None, within: tuple[str, ...] | None) -> list[Any]:
    conds: list[Any] = []
    if within is not None:
        conds.append(under_any(Area.path, within) if within else false())
    if area_path is not None:
        conds.append(Area.path.startswith(area_path, autoescape=True))
    if device_id is not None:
        conds.append(Device.id == device_id)
    return conds


def rows(session: Session, within: tuple[str, ...] | None, *, device_id: str | None = None,
         area_path: str | None = None, since: datetime | None = None, until: datetime | None = None,
         command_id: str | None = None, now: datetime | None = None) -> list[dict[str, Any]]:
    """The as-run rows of the devices in `within` (area paths; None: every area), oldest first."""
    now = now or utcnow()
    where = _where(device_id, area_path, within)
    seg_q = (select(AsRunSegment, Device, Area).join(Device, Device.id == AsRunSegment.device_id)
             .join(Area, Area.code == Device.area_code).where(*where))
    began = func.coalesce(AsRunSegment.started_at, AsRunSegment.ended_at)
    if since is not None:
        seg_q = seg_q.where(or_(AsRunSegment.ended_at.is_(None), AsRunSegment.ended_at >= since))
    if until is not None:
        seg_q = seg_q.where(began < until)
    if command_id is not None:
        seg_q = seg_q.where(or_(AsRunSegment.command_id == command_id, AsRunSegment.resume_of == command_id))
    segs = session.execute(seg_q.order_by(began, AsRunSegment.id).limit(MAX_ROWS)).all()
    found: list[tuple[datetime | None, dict[str, Any], Device, Area]] = []
    for seg, dev, area in segs:
        found.append((seg.started_at or seg.ended_at, _segment(seg), dev, area))
    aired = {(s.command_id, s.device_id) for s, _, _ in segs}
    found += _not_played(session, where, since, until, command_id, now, aired)
    found.sort(key=lambda r: (r[0] is None, r[0] or now))
    communes = _communes(session, [a for _, _, _, a in found])
    out = []
    for _, row, dev, area in found[:MAX_ROWS]:
        out.append({"device_id": dev.id, "device_name": dev.name, "area_code": area.code,
                    "commune": communes.get(area.code, area.name), **row})
    return out


def _segment(seg: AsRunSegment) -> dict[str, Any]:
    return {"id": seg.id, "command_id": seg.command_id, "verb": seg.verb, "content_id": seg.content_id,
            "source": seg.source, "priority": seg.priority, "rank": seg.rank,
            "started_at": local(seg.started_at), "ended_at": local(seg.ended_at), "outcome": seg.outcome,
            "reason": seg.reason, "delivery_state": None,
            "interrupted_by": ({"command_id": seg.interrupted_by, "priority": seg.interrupted_by_class}
                               if seg.interrupted_by else None),
            "planned": {"start_at": local(seg.planned_start_at), "expires_at": local(seg.planned_expires_at),
                        "programme_key": seg.programme_key},
            "resume_of": seg.resume_of, "follow_up": seg.follow_up, "resumed_by": seg.resumed_by}


def _not_played(session: Session, where: list[Any], since: datetime | None, until: datetime | None,
                command_id: str | None, now: datetime, aired: set[tuple[str, str]]) -> list[Any]:
    """Planned plays that never reached the air on a device: terminal deliveries other than acked,
    and acked ones whose slot closed with no segment."""
    planned = func.coalesce(Command.start_at, Command.created_at)
    q = (select(Delivery, Command, Device, Area).join(Command, Command.id == Delivery.command_id)
         .join(Device, Device.id == Delivery.device_id).join(Area, Area.code == Device.area_code)
         .where(*where, Command.verb.in_(PLAY_VERBS),
                or_(Delivery.state.in_((DeliveryState.FAILED, DeliveryState.EXPIRED, DeliveryState.SUPERSEDED,
                                        DeliveryState.UNSUPPORTED)),
                    and_(Delivery.state == DeliveryState.ACKED, Command.expires_at <= now))))
    if since is not None:
        q = q.where(Command.expires_at >= since)
    if until is not None:
        q = q.where(planned < until)
    if command_id is not None:
        q = q.where(Command.id == command_id)
    out = []
    for d, cmd, dev, area in session.execute(q.order_by(planned, Delivery.id).limit(MAX_ROWS)):
        if (cmd.id, dev.id) in aired or _aired(session, cmd, dev.id):
            continue
        origin = session.get(Command, resume_origin(cmd)) or cmd
        row = {"id": None, "command_id": cmd.id, "verb": cmd.verb, "content_id": cmd.content_id, "source": None,
               "priority": cmd.priority, "rank": rank_name(cmd.verb, cmd.priority), "started_at": None,
               "ended_at": None, "outcome": NOT_PLAYED,
               "reason": d.reason if d.state != DeliveryState.ACKED else NEVER_ON_AIR, "delivery_state": d.state,
               "interrupted_by": None,
               "planned": {"start_at": local(origin.start_at), "expires_at": local(origin.expires_at),
                           "programme_key": origin.idempotency_key if origin.issuer == PROGRAMME_ISSUER else None},
               "resume_of": origin.id if origin.id != cmd.id else None, "follow_up": None, "resumed_by": None}
        out.append((cmd.start_at or cmd.created_at, row, dev, area))
    return out


def _aired(session: Session, cmd: Command, device_id: str) -> bool:
    return session.scalar(select(AsRunSegment.id).where(AsRunSegment.command_id == cmd.id,
                                                        AsRunSegment.device_id == device_id).limit(1)) is not None
