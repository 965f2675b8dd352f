"""Statistics reports (báo cáo thống kê) in the console: an area of the reader's and a period of local
dates (this week, last week, this month, or dates of its own), the figures per area as
hub.reports.statistics.compute counts them for GET /api/reports/statistics, a chart of the minutes
broadcast per area drawn from the same figures, and links to the API's CSV, XLSX and printable page
(the API takes the console's session cookie for a GET). Figures are what devices confirmed, never
the plan (a state is a claim to a province)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import flask
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from hub.access.permissions import ANYONE
from hub.console.common import NavEntry, actor, add_nav, console_blueprint, refuse, runtime
from hub.console.i18n import zone_name
from hub.console.scope import my_paths, visible_areas
from hub.reports import statistics
from hub.store.models import Area

bp = console_blueprint("console_reports", __name__)

RULES = {"statistics_page": {"GET": ANYONE}}  # reads: the figures of the reader's own areas only

# The `reports` key stays the as-run log's; the statistics sit beside it in the menu.
add_nav(NavEntry("statistics", _l("Statistics"), "console_reports.statistics_page", order=81))

PERIODS = {"this_week": _l("This week"), "last_week": _l("Last week"), "this_month": _l("This month"),
           "custom": _l("Dates of my own")}
# The columns of the page's table: the report's key and its heading; the CSV/XLSX carry every column.
COLUMNS = (("bulletins", _l("Bulletins")), ("minutes_broadcast", _l("Minutes broadcast")),
           ("uptime_percent", _l("Uptime %")), ("delivery_success_percent", _l("Delivery success %")),
           ("emergency_reach_percent", _l("Emergency reach %")), ("not_played", _l("Not played")))


@dataclass(frozen=True)
class Asked:
    period: str
    first_day: date
    last_day: date


class Refused(Exception):
    """A request the page answers with a sentence instead of figures."""

    def __init__(self, status: int, sentence: str) -> None:
        super().__init__(sentence)
        self.status, self.sentence = status, sentence


def period_days(kind: str, today: date) -> tuple[date, date]:
    """The local dates of a named period around `today` (weeks run Monday to Sunday)."""
    monday = today - timedelta(days=today.weekday())
    if kind == "last_week":
        return monday - timedelta(days=7), monday - timedelta(days=1)
    if kind == "this_month":
        first = today.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return first, following - timedelta(days=1)
    return monday, monday + timedelta(days=6)


def _asked(args: Any, today: date) -> Asked:
    kind = args.get("period") or ("custom" if args.get("from") or args.get("to") else "this_week")
    if kind not in PERIODS:
        kind = "this_week"
    if kind != "custom":
        return Asked(kind, *period_days(kind, today))
    try:
        first = date.fromisoformat(args.get("from") or "")
        last = date.fromisoformat(args.get("to") or "")
    except ValueError:
        raise Refused(422, _("Choose both the first and the last day of the period.")) from None
    if last < first:
        raise Refused(422, _("The last day must not be before the first day."))
    if (last - first).days >= statistics.MAX_DAYS:
        raise Refused(422, _("A report covers at most %(n)s days.", n=statistics.MAX_DAYS))
    return Asked(kind, first, last)


def _roots(s: Any, code: str | None) -> tuple[Area | None, list[str]]:
    """The areas the report covers, as the API chooses them: the area asked for if the reader may
    see it, else the reader's own (every top-level area for a province-wide account)."""
    mine = my_paths(s)
    if code:
        area = s.get(Area, code)
        if area is None or (mine is not None and not any(area.path.startswith(p) for p in mine)):
            # an unknown code and another commune's read the same: nothing is told about areas not one's own
            raise Refused(403, _("The area %(code)s lies outside your areas: you can see reports of your own "
                                 "areas only.", code=code))
        return area, [area.code]
    if mine is None:
        return None, list(s.scalars(select(Area.code).where(Area.parent_code.is_(None)).order_by(Area.code)))
    return None, sorted(actor().areas or ())


def chart_of(rows: list[dict[str, Any]], roots: list[str]) -> dict[str, Any]:
    """The chart's data: minutes broadcast and bulletins of the areas right below the report's
    top areas (the top areas themselves when they have none below them)."""
    below = [r for r in rows if r["parent_code"] in roots] or [r for r in rows if r["area_code"] in roots]
    return {"labels": [r["area_name"] for r in below], "codes": [r["area_code"] for r in below],
            "minutes": [r["minutes_broadcast"] for r in below], "bulletins": [r["bulletins"] for r in below]}


def shown(value: Any) -> str:
    """A figure as the reader writes numbers (Vietnamese: 92,86); a missing one as a dash."""
    if value is None:
        return "—"
    return str(format_decimal(value, format="#,##0.##"))


@bp.get("/console/reports")
def statistics_page() -> Any:
    rt = runtime()
    tz = ZoneInfo(zone_name(rt.settings))
    today = datetime.now(tz).date()
    code = flask.request.args.get("area") or None
    with rt.db.session() as s:
        areas = visible_areas(s)
        try:
            area, roots = _roots(s, code)
            asked = _asked(flask.request.args, today)
        except Refused as exc:
            if exc.status == 403:
                return refuse(403, exc.sentence)
            return flask.make_response(_render(areas, None, Asked(flask.request.args.get("period") or "custom",
                                                                  today, today), problem=exc.sentence), 422)
        period = statistics.Period.of(asked.first_day, asked.last_day, tz)
        report = statistics.compute(s, roots, period).as_dict() if roots else None
        return _render(areas, area, asked, report=report, roots=roots)


def _render(areas: list[Area], area: Area | None, asked: Asked, report: dict[str, Any] | None = None,
            roots: list[str] | None = None, problem: str | None = None) -> str:
    query = {"area": area.code if area else None, "from": asked.first_day.isoformat(),
             "to": asked.last_day.isoformat()}
    exports = {fmt: flask.url_for("statistics.StatisticsReport", **query, format=fmt) for fmt in ("csv", "xlsx", "html")}
    rows = report["areas"] if report else []
    return flask.render_template("reports.html", areas=areas, area=area, asked=asked, periods=PERIODS,
                                 columns=COLUMNS, rows=rows, roots=set(roots or ()), problem=problem,
                                 chart=chart_of(rows, roots or []) if rows else None, exports=exports,
                                 shown=shown, report=report)


__all__ = ["bp", "chart_of", "period_days"]
