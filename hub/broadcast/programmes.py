"""Programmes (*lịch phát*): a programme's occurrences, expanded from its iCalendar text.

Times are local to Asia/Ho_Chi_Minh: a VEVENT with a floating DTSTART (no TZID) means local time,
as an operator writing "06:00" means it. Occurrences come out in UTC, sorted, clipped to the
programme's validity range; a moved occurrence (RECURRENCE-ID) keeps the identity of the slot it
replaces, so a command already made for that slot is recognised (hub.broadcast.materialise).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from hub.store.broadcast_tables import Programme

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class ProgrammeError(ValueError):
    """A programme's calendar cannot be used; the message says why."""


@dataclass(frozen=True, order=True)
class Occurrence:
    start: datetime  # UTC
    end: datetime  # UTC; equal to start when the VEVENT has neither DTEND nor DURATION
    programme_id: str
    slot: datetime  # UTC: the recurrence this occurrence stands for (its RECURRENCE-ID, else its start)

    @property
    def key(self) -> str:
        """The occurrence's name, the same in every process and after a restart."""
        return f"programme:{self.programme_id}:{self.slot.strftime('%Y%m%dT%H%M%SZ')}"


def _utc(value: object) -> datetime:
    if not isinstance(value, datetime):  # an all-day date: from local midnight
        value = datetime(value.year, value.month, value.day)  # type: ignore[attr-defined]
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    return value.astimezone(timezone.utc)


def parse_calendar(text: str) -> icalendar.Calendar:
    """The calendar of a programme; ProgrammeError unless it holds at least one VEVENT with a DTSTART."""
    try:
        cal = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise ProgrammeError(f"not iCalendar: {exc}") from None
    events = cal.walk("VEVENT")
    if not events or any(e.get("DTSTART") is None for e in events):
        raise ProgrammeError("a programme needs at least one VEVENT, each with a DTSTART")
    return cal


def occurrences(programme: Programme, start: datetime, end: datetime) -> list[Occurrence]:
    """The occurrences of `programme` starting in [start, end), sorted by start."""
    cal = parse_calendar(programme.ical)
    lo, hi = start, end
    if programme.valid_from is not None:
        lo = max(lo, programme.valid_from)
    if programme.valid_until is not None:
        hi = min(hi, programme.valid_until)
    if lo >= hi:
        return []
    out = []
    # recurring-ical-events returns events in no promised order: sorted below
    for event in recurring_ical_events.of(cal).between(lo.astimezone(LOCAL_TZ), hi.astimezone(LOCAL_TZ)):
        begins = _utc(event["DTSTART"].dt)
        if not lo <= begins < hi:  # between() also returns events that began before and still run
            continue
        ends = _utc(event["DTEND"].dt) if event.get("DTEND") is not None else begins
        recurrence = event.get("RECURRENCE-ID")
        out.append(Occurrence(begins, max(ends, begins), programme.id,
                              _utc(recurrence.dt) if recurrence is not None else begins))
    return sorted(out)


def overlap(a: Occurrence, b: Occurrence) -> bool:
    """Whether two occurrences hold the air at the same moment (an instant counts at its start)."""
    if a.start == b.start:
        return True
    return a.start < max(b.end, b.start + _INSTANT) and b.start < max(a.end, a.start + _INSTANT)


_INSTANT = timedelta(microseconds=1)
