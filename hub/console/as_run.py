"""The as-run log (nhật ký phát thực tế) of a device or an area for one day: what played, from when to
when, what interrupted it, and each planned play that never reached the air — read through
hub.reports.as_run.rows, as GET /api/as-run and `hub as-run` read it. Only what devices reported is
shown as played (a state is a claim to a province)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import flask
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from hub.access.permissions import ANYONE
from hub.console.common import NavEntry, add_nav, console_blueprint, runtime
from hub.console.i18n import province_zone
from hub.console.scope import chosen_paths, devices_in, my_paths, visible_areas
from hub.reports import as_run
from hub.store.as_run_tables import AsRunOutcome
from hub.store.models import Content, Device

bp = console_blueprint("console_as_run", __name__)

RULES = {"as_run_day": {"GET": ANYONE}}

add_nav(NavEntry("reports", _l("As-run log"), "console_as_run.as_run_day", order=80))

OUTCOME_WORDS = {as_run.NOT_PLAYED: _l("not played"), AsRunOutcome.FINISHED: _l("played to the end"),
                 AsRunOutcome.INTERRUPTED: _l("interrupted"), AsRunOutcome.STOPPED: _l("stopped"),
                 AsRunOutcome.FAILED: _l("ended early"), AsRunOutcome.PLAYING: _l("playing now"),
                 AsRunOutcome.SKIPPED: _l("interrupted, not resumed")}


@bp.context_processor
def _words() -> dict[str, Any]:
    return {"outcome_word": lambda o: str(OUTCOME_WORDS.get(o, o or "—"))}


def _day_asked() -> date:
    try:
        return date.fromisoformat(flask.request.args.get("day", ""))
    except ValueError:
        return datetime.now(province_zone()).date()


def _clock(value: str | None) -> str:
    """An ISO time of the rows (+07:00) as HH:MM:SS in the province's time."""
    if not value:
        return "—"
    return datetime.fromisoformat(value).astimezone(province_zone()).strftime("%H:%M:%S")


@bp.get("/console/as-run")
def as_run_day() -> Any:
    day = _day_asked()
    zone = province_zone()
    since = datetime.combine(day, time(), zone).astimezone(timezone.utc)
    until = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(timezone.utc)
    with runtime().db.session() as s:
        area, paths = chosen_paths(s, flask.request.args.get("area"))
        mine = my_paths(s)
        device_id = flask.request.args.get("device") or None
        device = None
        if device_id:
            device = s.scalar(select(Device).where(Device.id == device_id, devices_in(mine)))
            if device is None:
                flask.abort(404)
        rows = as_run.rows(s, mine, device_id=device_id, area_path=area.path if area is not None else None,
                           since=since, until=until)
        ids = sorted({r["content_id"] for r in rows if r["content_id"]})
        titles = dict(s.execute(select(Content.id, Content.title).where(Content.id.in_(ids))).all()) if ids else {}
        devices = list(s.scalars(select(Device).where(devices_in(paths)).order_by(Device.id).limit(500)))
        return flask.render_template("as_run.html", rows=rows, titles=titles, day=day, area=area, device=device,
                                     areas=visible_areas(s), devices=devices, clock=_clock,
                                     previous=(day - timedelta(days=1)).isoformat(),
                                     next=(day + timedelta(days=1)).isoformat())


__all__ = ["bp"]
