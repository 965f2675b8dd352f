"""Reporting periods (a day, an ISO week, a calendar month) in the province's time zone.

A period is named by an id that never changes once it has ended — `day:2025-09-01`,
`week:2025-W36`, `month:2025-09` — so a file name, a receiver's deduplication key and a row of the
published table all say the same thing. Only periods that have ended are ever reported.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

KINDS = ("day", "week", "month")
PROVINCE_TZ = "Asia/Ho_Chi_Minh"  # the province's time zone (the hub's LOCAL_TZ)


def zone(name: str) -> ZoneInfo:
    """The named IANA time zone; ValueError naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. {PROVINCE_TZ})") from None


@dataclass(frozen=True)
class Period:
    """From the start of `first_day` to the end of `last_day` (inclusive), local time in `tz`."""

    kind: str
    first_day: date
    last_day: date
    tz: ZoneInfo

    @property
    def slug(self) -> str:
        """The period's name within its kind: 2025-09-01, 2025-W36, 2025-09."""
        if self.kind == "day":
            return self.first_day.isoformat()
        if self.kind == "week":
            year, week, _ = self.first_day.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.first_day.year}-{self.first_day.month:02d}"

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.slug}"

    @property
    def start(self) -> datetime:
        """The first instant of the period, UTC."""
        return datetime.combine(self.first_day, time(), self.tz).astimezone(timezone.utc)

    @property
    def end(self) -> datetime:
        """The first instant after the period, UTC."""
        return datetime.combine(self.last_day + timedelta(days=1), time(), self.tz).astimezone(timezone.utc)

    def previous(self) -> Period:
        return containing(self.kind, self.first_day - timedelta(days=1), self.tz)


def containing(kind: str, day: date, tz: ZoneInfo) -> Period:
    """The period of `kind` that holds the local date `day`."""
    if kind == "day":
        return Period(kind, day, day, tz)
    if kind == "week":  # ISO weeks: Monday to Sunday
        monday = day - timedelta(days=day.weekday())
        return Period(kind, monday, monday + timedelta(days=6), tz)
    if kind == "month":
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return Period(kind, first, following - timedelta(days=1), tz)
    raise ValueError(f"{kind!r} is not a period kind ({', '.join(KINDS)})")


def completed(kind: str, now: datetime, tz: ZoneInfo, count: int = 1, settle_s: float = 0.0) -> list[Period]:
    """The `count` most recent periods of `kind` that ended at least `settle_s` before `now`
    (timezone-aware), oldest first."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cutoff = now - timedelta(seconds=settle_s)
    period = containing(kind, cutoff.astimezone(tz).date(), tz).previous()
    out = []
    for _ in range(count):
        out.append(period)
        period = period.previous()
    return out[::-1]
