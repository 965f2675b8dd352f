"""The published table: one row per area and period, made from the hub's statistics (the
`AreaStatistics` the context returns) by naming each field — so a field the hub adds later, personal
or not, never reaches a published file until this module and schema.json name it.

The row's fields and their order are schema.json's; `csv_bytes` and `json_bytes` write them as
UTF-8 (CSV with a byte-order mark, so Excel shows Vietnamese names right).
"""
from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from hub_output_opendata.periods import Period

log = logging.getLogger(__name__)
SCHEMA_FILE = "schema.json"
CLASSES = ("normal", "priority", "emergency")  # the hub's command classes; others go to bulletins_other
LEVELS = ("province", "district", "commune")


@cache
def schema_text() -> str:
    """The published Table Schema, as shipped in the package."""
    return resources.files("hub_output_opendata").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


def schema() -> dict[str, Any]:
    return json.loads(schema_text())


@cache
def field_names() -> tuple[str, ...]:
    return tuple(f["name"] for f in schema()["fields"])


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what}: expected a count (an integer ≥ 0), got {value!r}")
    return value


def row(stat: Any, period: Period) -> dict[str, Any]:
    """The published row of one area's statistics (an AreaStatistics) for `period`. Counts must
    be integers ≥ 0; ValueError naming the area and field otherwise (a row the schema would refuse
    is never written)."""
    code = str(stat.area_code)
    by_class: Mapping[str, int] = stat.bulletins_by_class or {}
    counts = {c: _count(by_class.get(c, 0), f"area {code}: bulletins_by_class[{c}]") for c in CLASSES}
    other = sum(_count(v, f"area {code}: bulletins_by_class[{k}]") for k, v in by_class.items() if k not in CLASSES)
    uptime = stat.uptime_percent
    if uptime is not None and not 0 <= uptime <= 100:
        raise ValueError(f"area {code}: uptime_percent {uptime!r} is not within 0-100")
    minutes = float(stat.minutes_broadcast)
    if not minutes >= 0:  # NaN fails this too
        raise ValueError(f"area {code}: minutes_broadcast {stat.minutes_broadcast!r} is not a number ≥ 0")
    deliveries = _count(stat.deliveries, f"area {code}: deliveries")
    acked = _count(stat.deliveries_acked, f"area {code}: deliveries_acked")
    targeted = _count(stat.emergency_targeted, f"area {code}: emergency_targeted")
    reached = _count(stat.emergency_acked, f"area {code}: emergency_acked")
    return {
        "period": period.kind, "period_start": period.first_day.isoformat(),
        "period_end": period.last_day.isoformat(),
        "area_code": code, "area_name": str(stat.area_name), "level": str(stat.level),
        "parent_code": None if stat.parent_code is None else str(stat.parent_code),
        "devices": _count(stat.devices, f"area {code}: devices"),
        "uptime_percent": None if uptime is None else round(float(uptime), 2),
        "bulletins": _count(stat.bulletins, f"area {code}: bulletins"),
        "bulletins_normal": counts["normal"], "bulletins_priority": counts["priority"],
        "bulletins_emergency": counts["emergency"], "bulletins_other": other,
        "minutes_broadcast": round(minutes, 2),
        "deliveries": deliveries, "deliveries_acked": acked,
        "delivery_success_percent": _percent(acked, deliveries),
        "emergency_targeted": targeted, "emergency_acked": reached,
        "emergency_reach_percent": _percent(reached, targeted),
        "not_played": _count(stat.not_played, f"area {code}: not_played"),
    }


def rows(stats: Iterable[Any], period: Period) -> list[dict[str, Any]]:
    """The rows of `period`, province first, then by level and code. Areas of a level the table
    does not publish (a village) are left out: their figures are in their commune's row."""
    out = []
    for stat in stats:
        if str(stat.level) not in LEVELS:
            log.debug("open data: area %s of level %s is not published", stat.area_code, stat.level)
            continue
        out.append(row(stat, period))
    return sorted(out, key=lambda r: (LEVELS.index(r["level"]), r["area_code"]))


def _cell(value: Any) -> str:
    if value is None:
        return ""  # the schema's missing value
    if isinstance(value, float):
        return repr(value)  # "12.5", never a locale's "12,5"
    return str(value)


def csv_bytes(table: list[dict[str, Any]]) -> bytes:
    """The rows as CSV: UTF-8 with a byte-order mark, a header of the schema's field names, CRLF."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(field_names())
    for r in table:
        writer.writerow([_cell(r[name]) for name in field_names()])
    return buf.getvalue().encode("utf-8-sig")


def json_bytes(table: list[dict[str, Any]]) -> bytes:
    """The rows as a JSON array of objects keyed by the schema's field names (null: missing)."""
    ordered = [{name: r[name] for name in field_names()} for r in table]
    return (json.dumps(ordered, ensure_ascii=False, indent=1, allow_nan=False) + "\n").encode("utf-8")
