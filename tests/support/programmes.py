"""A week of programmes in local time, shared by the programme tests: weekday news at 06:00 and
17:00 with one excluded evening and one moved morning, and a weekly Sunday bulletin with one extra
Saturday slot."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import icalendar

from hub.broadcast.ics import new_calendar, to_text
from hub.broadcast.programmes import LOCAL_TZ
from hub.runtime import Runtime
from hub.store.broadcast_tables import Programme
from hub.store.models import Content

UTC = timezone.utc


def next_monday(days_ahead: int = 2) -> datetime:
    """Local midnight of a Monday at least `days_ahead` days ahead: dispatch checks start_at
    against the real clock, so a simulated week lies in the real future."""
    day = datetime.now(LOCAL_TZ).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days_ahead)
    return day + timedelta(days=(7 - day.weekday()) % 7)


def event(uid: str, start: datetime, minutes: int = 15, **props: object) -> icalendar.Event:
    e = icalendar.Event()
    e.add("uid", uid)
    e.add("dtstart", start)
    e.add("duration", timedelta(minutes=minutes))
    for name, value in props.items():
        e.add(name.replace("_", "-"), value)
    return e


def calendar(*events: icalendar.Event) -> str:
    cal = new_calendar()
    for e in events:
        cal.add_component(e)
    return to_text(cal)


def week_calendars(monday: datetime) -> tuple[str, str]:
    """News on weekdays at 06:00 and 17:00 without Wednesday evening (EXDATE), Thursday's morning
    moved to 06:30 (RECURRENCE-ID); a weekly Sunday bulletin at 08:00 and, once, an extra Saturday
    slot at 09:00 (RDATE)."""
    news = calendar(
        event("news", monday.replace(hour=6), rrule={"freq": "daily", "byday": ["MO", "TU", "WE", "TH", "FR"],
                                                     "byhour": [6, 17]},
              exdate=monday.replace(hour=17) + timedelta(days=2)),
        event("news", monday.replace(hour=6, minute=30) + timedelta(days=3),
              recurrence_id=monday.replace(hour=6) + timedelta(days=3)))
    weekly = calendar(event("weekly", monday.replace(hour=8) + timedelta(days=6), minutes=30,
                            rrule={"freq": "weekly"}, rdate=monday.replace(hour=9) + timedelta(days=5)))
    return news, weekly


def expected(monday: datetime) -> list[datetime]:
    """The starts (UTC) of the week's occurrences of both calendars."""
    local = [monday + timedelta(days=d, hours=h) for d in range(5) for h in (6, 17)]
    local.remove(monday + timedelta(days=2, hours=17))
    local.remove(monday + timedelta(days=3, hours=6))
    local += [monday + timedelta(days=3, hours=6, minutes=30), monday + timedelta(days=5, hours=9),
              monday + timedelta(days=6, hours=8)]
    return sorted(t.astimezone(UTC) for t in local)


def programme(ical: str, target: dict, name: str = "p", **what: object) -> Programme:
    return Programme(id=uuid.uuid4().hex, name=name, target=target, ical=ical, created_by="test",
                     created_at=datetime.now(UTC), priority="normal", **what)


def published_content(rt: Runtime, duration_s: float = 600, status: str = "published", area: str | None = None) -> str:
    with rt.db.session() as s:
        cid = uuid.uuid4().hex
        s.add(Content(id=cid, title="Bản tin", kind="audio", media={"uri": "http://x/a.mp3", "duration_s": duration_s},
                      created_by="test", created_at=datetime.now(UTC), status=status, area_code=area))
    return cid
