"""Programmes (lịch phát): a week's calendar of an area — every occurrence of the programmes that play
there, in the province's time, Monday to Sunday, with the previous and next weeks a click away.

Read-only: programmes are written through the API or the CLI (hub.broadcast.editing). Which
programmes an area sees is editing.listed's rule (those whose area lies in it or holds it), and
their occurrences are hub.broadcast.programmes.occurrences, as GET /api/programmes/<id>/occurrences
answers them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import flask
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from hub.access.permissions import ANYONE
from hub.broadcast import editing
from hub.broadcast.programmes import ProgrammeError, occurrences
from hub.console.common import NavEntry, actor, add_nav, console_blueprint, runtime
from hub.console.i18n import province_zone
from hub.console.scope import chosen_paths, visible_areas
from hub.store.broadcast_tables import Programme
from hub.store.models import Content

bp = console_blueprint("console_programmes", __name__)

RULES = {"week": {"GET": ANYONE}}

add_nav(NavEntry("programmes", _l("Programmes"), "console_programmes.week", order=50))

DAY_NAMES = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"),
             _l("Sunday"))


@dataclass
class Slot:
    start: datetime  # in the province's time
    end: datetime
    programme: Programme
    what: str  # the content's title, the playlist's, or the stream's address
    moved: bool


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _week_asked() -> date:
    """The Monday of the week asked for (?week=YYYY-MM-DD, any day of it), else of this week."""
    today = datetime.now(province_zone()).date()
    try:
        asked = date.fromisoformat(flask.request.args.get("week", ""))
    except ValueError:
        asked = today
    return monday_of(asked)


def _what(p: Programme, titles: dict[str, str]) -> str:
    if p.content_id:
        return titles.get(p.content_id, p.content_id)
    if p.playlist:
        return " → ".join(titles.get(str(c), str(c)) for c in p.playlist)
    return p.stream_url or "—"


def week_slots(s: Any, programmes: list[Programme], monday: date) -> tuple[list[list[Slot]], list[str]]:
    """The week's occurrences, one list per day (Monday first), and the programmes whose calendar
    could not be read (named, rather than silently left out)."""
    zone = province_zone()
    start = datetime.combine(monday, time(), zone).astimezone(timezone.utc)
    end = datetime.combine(monday + timedelta(days=7), time(), zone).astimezone(timezone.utc)
    ids = {p.content_id for p in programmes if p.content_id} | {str(c) for p in programmes for c in p.playlist or ()}
    titles = dict(s.execute(select(Content.id, Content.title).where(Content.id.in_(sorted(ids)))).all()) if ids else {}
    days: list[list[Slot]] = [[] for _ in range(7)]
    unreadable = []
    for p in programmes:
        try:
            occs = occurrences(p, start, end)
        except ProgrammeError:
            unreadable.append(p.name)
            continue
        for o in occs:
            local = o.start.astimezone(zone)
            days[(local.date() - monday).days].append(Slot(local, o.end.astimezone(zone), p, _what(p, titles),
                                                           o.slot != o.start))
    for slots in days:
        slots.sort(key=lambda x: (x.start, x.programme.name))
    return days, unreadable


@bp.get("/console/programmes")
def week() -> Any:
    monday = _week_asked()
    with runtime().db.session() as s:
        area, _paths = chosen_paths(s, flask.request.args.get("area"))
        programmes = editing.listed(s, actor(), area.code if area is not None else None)
        days, unreadable = week_slots(s, programmes, monday)
        return flask.render_template(
            "programmes.html", area=area, areas=visible_areas(s), monday=monday, days=days, unreadable=unreadable,
            day_names=DAY_NAMES, dates=[monday + timedelta(days=i) for i in range(7)],
            previous=(monday - timedelta(days=7)).isoformat(), next=(monday + timedelta(days=7)).isoformat(),
            programmes=programmes, today=datetime.now(province_zone()).date())


__all__ = ["bp", "monday_of", "week_slots"]
