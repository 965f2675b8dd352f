"""`.ics` import and export of programmes, so a schedule comes from or goes to any calendar tool.

Export writes one VCALENDAR holding every programme's VEVENTs (with the time zones they use);
import splits a VCALENDAR by UID: one programme calendar per UID, its moved occurrences
(RECURRENCE-ID) kept beside the event they move. What plays and where is not iCalendar's to say:
the caller supplies it for each imported calendar.
"""
from __future__ import annotations

from collections.abc import Iterable

import icalendar

from hub.broadcast.programmes import ProgrammeError, parse_calendar
from hub.store.broadcast_tables import Programme

PRODID = "-//hub//lich phat//VI"


def new_calendar() -> icalendar.Calendar:
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    return cal


def to_text(cal: icalendar.Calendar) -> str:
    """A calendar as iCalendar text, carrying a VTIMEZONE for each TZID it uses."""
    cal.add_missing_timezones()
    return cal.to_ical().decode("utf-8")


def export_ics(programmes: Iterable[Programme]) -> str:
    """One `.ics` text with the events of every programme given (the programme's name as SUMMARY
    when its event has none)."""
    out = new_calendar()
    for programme in programmes:
        for event in parse_calendar(programme.ical).walk("VEVENT"):
            if event.get("SUMMARY") is None:
                event.add("summary", programme.name)
            out.add_component(event)
    return to_text(out)


def import_ics(text: str) -> dict[str, tuple[str, str]]:
    """UID → (name, a programme calendar's iCalendar text) for each event series in `text`."""
    try:
        cal = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise ProgrammeError(f"not an .ics file: {exc}") from None
    series: dict[str, icalendar.Calendar] = {}
    names: dict[str, str] = {}
    for event in cal.walk("VEVENT"):
        uid = str(event.get("UID") or "")
        if not uid:
            raise ProgrammeError("an event has no UID: its moved occurrences could not be told apart")
        series.setdefault(uid, new_calendar()).add_component(event)
        if event.get("RECURRENCE-ID") is None or uid not in names:
            names[uid] = str(event.get("SUMMARY") or uid)
    out = {uid: (names[uid], to_text(c)) for uid, c in series.items()}
    for _, ical in out.values():
        parse_calendar(ical)  # each series needs its DTSTART
    return out
