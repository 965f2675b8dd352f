"""Statistics reports (*báo cáo thống kê*): per area, with its subtree, and per period of local dates
(a day, a week, a month, a year, in the setting `timezone`): bulletins and minutes broadcast by
class, category and origin, device uptime, delivery success, emergency reach and time-to-ack, and
the plays that were scheduled but never played — computed from what devices confirmed
(hub.reports.statistics_facts states each definition), never from the plan.

One row per area, from the areas asked for down to communes (a village's devices count for its
commune). Every count and sum of a parent equals the sum of its children's plus what is recorded on
the parent itself (a device registered directly on a district); percentages are recomputed from the
summed parts, and the ack-time percentiles from the pooled times. The API (GET
/api/reports/statistics), the CLI (`hub reports statistics`) and outputs (OutputContext.statistics)
all read through `compute`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.capabilities import PRIORITIES
from hub.delivery.as_run_facts import ORIGINS
from hub.reports import statistics_facts as facts
from hub.reports.as_run import COMMUNE_TYPES
from hub.store.db import utcnow
from hub.store.models import Area, DeliveryState, Device

UNKNOWN = "unknown"  # a category or origin a played item did not have
MAX_DAYS = 366 * 5 + 2  # one report; a longer span is refused


class PeriodError(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True)
class Period:
    first_day: date
    last_day: date  # inclusive
    start: datetime  # first_day 00:00 local, timezone-aware
    end: datetime  # the day after last_day, 00:00 local

    @classmethod
    def of(cls, first_day: date, last_day: date, tz: ZoneInfo) -> Period:
        if last_day < first_day:
            raise PeriodError("to", "must not be before from")
        if (last_day - first_day).days >= MAX_DAYS:
            raise PeriodError("to", f"a report spans at most {MAX_DAYS} days")
        return cls(first_day, last_day, datetime.combine(first_day, time(0), tz),
                   datetime.combine(last_day + timedelta(days=1), time(0), tz))


def parse_day(value: str | None, field_name: str) -> date:
    if not value:
        raise PeriodError(field_name, "a local date YYYY-MM-DD is required")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PeriodError(field_name, f"{value!r} is not a date YYYY-MM-DD") from None


@dataclass
class Figures:
    """One area's figures. The additive parts sum from children to parents."""

    code: str
    name: str
    type: str
    parent_code: str | None
    depth: int
    devices: int = 0
    life_s: float = 0.0
    up_s: float = 0.0
    bulletins: int = 0
    minutes: float = 0.0
    bulletins_by_class: Counter[str] = field(default_factory=Counter)
    minutes_by_class: Counter[str] = field(default_factory=Counter)
    bulletins_by_category: Counter[str] = field(default_factory=Counter)
    minutes_by_category: Counter[str] = field(default_factory=Counter)
    bulletins_by_origin: Counter[str] = field(default_factory=Counter)
    minutes_by_origin: Counter[str] = field(default_factory=Counter)
    deliveries: int = 0
    deliveries_acked: int = 0
    emergency_targeted: int = 0
    emergency_acked: int = 0
    not_played: int = 0
    ack_times: list[float] = field(default_factory=list, repr=False)  # pooled, not summed: percentiles
    items: set[tuple[str, str | None]] = field(default_factory=set, repr=False)  # distinct bulletins

    @property
    def uptime_percent(self) -> float | None:
        return round(100 * self.up_s / self.life_s, 2) if self.life_s > 0 else None

    @property
    def delivery_success_percent(self) -> float | None:
        return round(100 * self.deliveries_acked / self.deliveries, 2) if self.deliveries else None

    @property
    def emergency_reach_percent(self) -> float | None:
        return round(100 * self.emergency_acked / self.emergency_targeted, 2) if self.emergency_targeted else None

    def ack_percentile(self, q: float) -> float | None:
        """Nearest-rank percentile of the emergency acks' times, in seconds."""
        if not self.ack_times:
            return None
        ordered = sorted(self.ack_times)
        rank = max(1, -(-len(ordered) * q // 100))
        return round(ordered[int(rank) - 1], 3)

    def as_dict(self) -> dict[str, Any]:
        def counts(c: Counter[str], keys: tuple[str, ...] = ()) -> dict[str, Any]:
            return {**{k: 0 for k in keys}, **dict(sorted(c.items()))}

        return {
            "area_code": self.code, "area_name": self.name, "level": self.type, "parent_code": self.parent_code,
            "depth": self.depth, "devices": self.devices, "uptime_percent": self.uptime_percent,
            "bulletins": self.bulletins, "distinct_bulletins": len(self.items),
            "minutes_broadcast": round(self.minutes, 2),
            "bulletins_by_class": counts(self.bulletins_by_class, PRIORITIES),
            "minutes_by_class": {k: round(v, 2) for k, v in counts(self.minutes_by_class, PRIORITIES).items()},
            "bulletins_by_category": counts(self.bulletins_by_category),
            "minutes_by_category": {k: round(v, 2) for k, v in counts(self.minutes_by_category).items()},
            "bulletins_by_origin": counts(self.bulletins_by_origin, ORIGINS),
            "minutes_by_origin": {k: round(v, 2) for k, v in counts(self.minutes_by_origin, ORIGINS).items()},
            "deliveries": self.deliveries, "deliveries_acked": self.deliveries_acked,
            "delivery_success_percent": self.delivery_success_percent,
            "emergency_targeted": self.emergency_targeted, "emergency_acked": self.emergency_acked,
            "emergency_reach_percent": self.emergency_reach_percent,
            "emergency_ack_p50_s": self.ack_percentile(50), "emergency_ack_p99_s": self.ack_percentile(99),
            "not_played": self.not_played,
        }


@dataclass
class Report:
    period: Period
    generated_at: datetime
    rows: list[Figures]  # parents before children, in tree order
    not_played: list[dict[str, Any]]  # per device: its scheduled-but-not-played items

    def as_dict(self) -> dict[str, Any]:
        tz = self.period.start.tzinfo
        return {"from": self.period.first_day.isoformat(), "to": self.period.last_day.isoformat(),
                "period_start": self.period.start.isoformat(), "period_end": self.period.end.isoformat(),
                "generated_at": self.generated_at.astimezone(tz).isoformat(timespec="seconds"),
                "areas": [r.as_dict() for r in self.rows], "not_played_by_device": self.not_played,
                "definitions": DEFINITIONS}


DEFINITIONS = {
    "bulletins": "items (a command with its content, resumes included) played on at least one device of a "
                 "commune, counted once per commune; parents sum their communes",
    "distinct_bulletins": "items played anywhere in the area, each once (not additive)",
    "minutes_broadcast": "sum of what each device played, per device, counted in the period its segment began",
    "uptime_percent": "time devices were online or degraded over the time they existed in the period",
    "delivery_success_percent": "acked over acked + failed + expired deliveries queued in the period",
    "emergency_reach_percent": "acked over targeted deliveries of emergency play, relay and LED commands "
                               "(unsupported ones excepted)",
    "emergency_ack_p50_s": "time from queued to acked, seconds (nearest rank)",
    "not_played": "plays planned in the period that never reached the air on a device",
    "origin": "national: from a source run by the national plugin; otherwise provincial for content of the "
              "province (or no area), local for content of an area below it",
}


class Tree:
    """The rows of a report: the areas under `roots` down to communes, and where a fact counts."""

    def __init__(self, s: Session, roots: list[str]) -> None:
        self.rows: dict[str, Figures] = {}
        self.unit: dict[str, str] = {}  # any area code in the subtrees → the row it counts in
        for root in roots:
            path = s.scalar(select(Area.path).where(Area.code == root))
            if path is None:
                raise PeriodError("area", f"unknown area code {root}")
            for a in s.scalars(select(Area).where(Area.path.startswith(path, autoescape=True))
                               .order_by(Area.path)):  # parents before children
                if a.code in self.unit:  # roots that overlap
                    continue
                pu = self.unit.get(a.parent_code) if a.code != root else None
                if pu is not None and (pu != a.parent_code or self.rows[pu].type in COMMUNE_TYPES):
                    self.unit[a.code] = pu  # below a commune: counts for it
                    continue
                depth = len(a.path.strip("/").split("/")) - 1
                self.rows[a.code] = Figures(a.code, a.name, a.type, a.parent_code, depth)
                self.unit[a.code] = a.code
        self._lineage: dict[str, list[str]] = {}

    def lineage(self, area_code: str | None) -> list[str]:
        """The rows a fact recorded in `area_code` counts in: its unit and every row above it."""
        if area_code is None or area_code not in self.unit:
            return []
        unit = self.unit[area_code]
        if unit not in self._lineage:
            chain, code = [], unit
            while code in self.rows:
                chain.append(code)
                code = self.rows[code].parent_code
            self._lineage[unit] = chain
        return self._lineage[unit]


def compute(s: Session, roots: list[str], period: Period, now: datetime | None = None) -> Report:
    """The report of the areas `roots` (each with its subtree) over `period`."""
    now = now or utcnow()
    tree = Tree(s, roots)
    until = min(period.end, now)
    for life in facts.lives(s, period.start, until) if until > period.start else ():
        for code in tree.lineage(life.area_code):
            r = tree.rows[code]
            r.devices, r.life_s, r.up_s = r.devices + 1, r.life_s + life.life_s, r.up_s + life.up_s
    seen_units: set[tuple[str, str, str | None]] = set()
    for p in facts.played(s, period.start, period.end, now):
        lineage = tree.lineage(p.area_code)
        if not lineage:
            continue
        category, origin = p.category or UNKNOWN, p.origin or UNKNOWN
        new_in_unit = (lineage[0], p.item, p.content_id) not in seen_units
        seen_units.add((lineage[0], p.item, p.content_id))
        for code in lineage:
            r = tree.rows[code]
            r.minutes += p.minutes
            r.minutes_by_class[p.priority] += p.minutes
            r.minutes_by_category[category] += p.minutes
            r.minutes_by_origin[origin] += p.minutes
            r.items.add((p.item, p.content_id))
            if new_in_unit:
                r.bulletins += 1
                r.bulletins_by_class[p.priority] += 1
                r.bulletins_by_category[category] += 1
                r.bulletins_by_origin[origin] += 1
    for d in facts.sent(s, period.start, period.end):
        for code in tree.lineage(d.area_code):
            r = tree.rows[code]
            if d.state in facts.ATTEMPTS:
                r.deliveries += 1
                r.deliveries_acked += d.state == DeliveryState.ACKED
            if d.emergency:
                r.emergency_targeted += 1
                if d.state == DeliveryState.ACKED:
                    r.emergency_acked += 1
                    if d.ack_s is not None:
                        r.ack_times.append(d.ack_s)
    by_device: dict[str, dict[str, Any]] = {}
    for n in facts.not_played(s, period.start, period.end, now):
        lineage = tree.lineage(n.area_code)
        for code in lineage:
            tree.rows[code].not_played += 1
        if lineage:
            entry = by_device.setdefault(n.device_id, {"device_id": n.device_id, "device_name": None,
                                                       "area_code": n.area_code, "not_played": 0, "items": []})
            entry["not_played"] += 1
            entry["items"].append({"command_id": n.command_id, "content_id": n.content_id, "priority": n.priority,
                                   "planned_at": n.planned_at.astimezone(period.start.tzinfo).isoformat(),
                                   "delivery_state": n.delivery_state, "reason": n.reason})
    if by_device:
        names = dict(s.execute(select(Device.id, Device.name).where(Device.id.in_(sorted(by_device)))).all())
        for did, entry in by_device.items():
            entry["device_name"] = names.get(did) or None
    return Report(period, now, list(tree.rows.values()), [by_device[k] for k in sorted(by_device)])
