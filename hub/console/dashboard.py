"""The dashboard of one area (or all of the reader's): devices online, offline and faulty, the
commands of today (the province's day, not UTC's), and the emergencies running now."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import flask
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from hub.access.permissions import ANYONE
from hub.capabilities import EMERGENCY
from hub.console.common import NavEntry, add_nav, console_blueprint, runtime
from hub.console.i18n import province_zone
from hub.console.scope import chosen_paths, command_reaches, devices_in, visible_areas
from hub.fleet.health import OPERATING_STATES
from hub.store.db import utcnow
from hub.store.models import TERMINAL_STATES, Command, Delivery, DeliveryState, Device, DeviceStatus

bp = console_blueprint("console_dashboard", __name__)

RULES = {"dashboard": {"GET": ANYONE}}

add_nav(NavEntry("dashboard", _l("Overview"), "console_dashboard.dashboard", order=10))

MAX_RUNNING_SHOWN = 20


def start_of_today(now: datetime) -> datetime:
    """Midnight of the province's today, as a UTC instant (what the database compares with)."""
    local = now.astimezone(province_zone())
    return datetime.combine(local.date(), time(0), tzinfo=local.tzinfo).astimezone(now.tzinfo)


def device_counts(session: Any, paths: tuple[str, ...] | None) -> dict[str, int]:
    """Devices by operating state (one never heard from is `unknown`), disabled ones apart."""
    state = func.coalesce(DeviceStatus.operating_state, OPERATING_STATES[0])
    rows = session.execute(select(state, func.count()).select_from(Device)
                           .outerjoin(DeviceStatus, DeviceStatus.device_id == Device.id)
                           .where(devices_in(paths), Device.admin_state == "enabled").group_by(state))
    out = dict.fromkeys(OPERATING_STATES, 0)
    out.update({s: n for s, n in rows})
    out["disabled"] = session.scalar(select(func.count()).select_from(Device)
                                     .where(devices_in(paths), Device.admin_state != "enabled")) or 0
    out["total"] = sum(out[s] for s in OPERATING_STATES) + out["disabled"]
    return out


def commands_by_hour(session: Any, paths: tuple[str, ...] | None, since: datetime) -> list[int]:
    """How many commands reaching `paths` were made in each hour of the province's today."""
    hours = [0] * 24
    zone = province_zone()
    for created in session.scalars(select(Command.created_at).where(Command.created_at >= since,
                                                                    command_reaches(paths))):
        hours[created.astimezone(zone).hour] += 1
    return hours


def running_emergencies(session: Any, paths: tuple[str, ...] | None, now: datetime) -> list[dict[str, Any]]:
    """Emergency commands started, not cancelled nor past their expiry, reaching `paths`, with how
    many of their devices have ended (a claim stands only once the device confirmed)."""
    cmds = list(session.scalars(
        select(Command).where(Command.priority == EMERGENCY, Command.cancelled_at.is_(None),
                              Command.expires_at > now, command_reaches(paths))
        .where((Command.start_at.is_(None)) | (Command.start_at <= now))
        .order_by(Command.created_at.desc()).limit(MAX_RUNNING_SHOWN)))
    out = []
    for cmd in cmds:
        by_state = dict(session.execute(select(Delivery.state, func.count()).where(Delivery.command_id == cmd.id)
                                        .group_by(Delivery.state)).all())
        out.append({"command": cmd, "total": sum(by_state.values()),
                    "ended": sum(by_state.get(s, 0) for s in TERMINAL_STATES),
                    "confirmed": by_state.get(DeliveryState.ACKED, 0)})
    return out


@bp.get("/console/")
def dashboard() -> Any:
    now = utcnow()
    since = start_of_today(now)
    with runtime().db.session() as s:
        area, paths = chosen_paths(s, flask.request.args.get("area"))
        hours = commands_by_hour(s, paths, since)
        acked_today = s.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.state == DeliveryState.ACKED, Delivery.finished_at >= since,
            Delivery.device_id.in_(select(Device.id).where(devices_in(paths))))) or 0
        body = flask.render_template(
            "dashboard.html", area=area, areas=visible_areas(s), devices=device_counts(s, paths),
            commands_today=sum(hours), acked_today=acked_today, series=[list(range(24)), hours],
            emergencies=running_emergencies(s, paths, now), today=now)
    return body


__all__ = ["bp"]
