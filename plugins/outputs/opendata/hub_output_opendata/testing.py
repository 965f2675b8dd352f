"""A stand-in for the hub's statistics (hub.output.AreaStatistics through OutputContext.statistics)
for the tests of outputs that report statistics (this one, national_push): one province, one district, two communes, Vietnamese names;
a parent's figures are the sums of its children's, as the hub's are."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from hub.output import AreaStatistics

# 2025-09-02 00:30 in Asia/Ho_Chi_Minh: yesterday is 1 September, last week 25-31 August, last month August
NOW = datetime(2025, 9, 1, 17, 30, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Stats(AreaStatistics):
    """hub.output.AreaStatistics itself (so a change of the contract shows here), plus two fields the
    published table must never show (they stand for what the hub knows of people and devices)."""

    operator_name: str = "Nguyễn Văn An"
    device_address: str = "10.80.3.7:502"


def communes(start: datetime, end: datetime) -> list[Stats]:
    common: dict[str, Any] = {"level": "commune", "parent_code": "794", "period_start": start, "period_end": end}
    return [
        Stats(area_code="27595", area_name="Xã Hựu Thạnh", devices=4, uptime_percent=97.5, bulletins=12,
              minutes_broadcast=95.5, bulletins_by_class={"normal": 10, "priority": 1, "emergency": 1},
              deliveries=40, deliveries_acked=38, emergency_targeted=4, emergency_acked=4, not_played=2, **common),
        Stats(area_code="27598", area_name="Thị trấn Hậu Nghĩa", devices=6, uptime_percent=88.25, bulletins=9,
              minutes_broadcast=61.25, bulletins_by_class={"normal": 8, "emergency": 1}, deliveries=54,
              deliveries_acked=50, emergency_targeted=6, emergency_acked=5, not_played=0, **common),
    ]


def summed(children: list[Stats], **who: Any) -> Stats:
    def total(name: str) -> Any:
        return sum(getattr(c, name) for c in children)

    classes: dict[str, int] = {}
    for c in children:
        for k, v in c.bulletins_by_class.items():
            classes[k] = classes.get(k, 0) + v
    uptime = sum((c.uptime_percent or 0) * c.devices for c in children) / total("devices")
    return replace(children[0], **who, devices=total("devices"), uptime_percent=round(uptime, 2),
                   bulletins=total("bulletins"), minutes_broadcast=total("minutes_broadcast"),
                   bulletins_by_class=classes, deliveries=total("deliveries"),
                   deliveries_acked=total("deliveries_acked"), emergency_targeted=total("emergency_targeted"),
                   emergency_acked=total("emergency_acked"), not_played=total("not_played"))


def province_statistics(start: datetime, end: datetime) -> list[Stats]:
    low = communes(start, end)
    district = summed(low, area_code="794", area_name="Huyện Đức Hòa", level="district", parent_code="80")
    province = summed([district], area_code="80", area_name="Tỉnh Long An", level="province", parent_code=None)
    return [district, *low, province]  # in no particular order, as the hub may give them


@dataclass
class StatisticsContext:
    """The part of hub.output.OutputContext the statistics outputs use; records each call."""

    hub_name: str = "long-an"
    calls: list[tuple[datetime, datetime, str | None]] = field(default_factory=list)
    rows: Any = province_statistics  # (start, end) -> the AreaStatistics of the period

    def now(self) -> datetime:
        return NOW

    def statistics(self, period_start: datetime, period_end: datetime,
                   area_code: str | None = None) -> list[Any]:
        self.calls.append((period_start, period_end, area_code))
        found = self.rows(period_start, period_end)
        if area_code is None:
            return found
        return [s for s in found if s.area_code == area_code or s.parent_code == area_code
                or (s.level == "commune" and area_code == "794")]
