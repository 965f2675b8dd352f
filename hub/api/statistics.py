"""Statistics reports (*báo cáo thống kê*) of the caller's areas: GET /api/reports/statistics as JSON,
CSV, XLSX or a printable HTML page — the same figures (hub.reports.statistics)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import flask
import marshmallow as ma
from flask.views import MethodView

from hub.access.permissions import ANYONE
from hub.api.common import HubBlueprint, actor, area_path, fail, runtime, scope
from hub.hookspecs import hookimpl
from hub.reports import statistics, statistics_export

blp = HubBlueprint("statistics", __name__, url_prefix="/api/reports",
                   description="Statistics per area and period of local dates: bulletins and minutes broadcast "
                               "by class, category and origin, device uptime, delivery success, emergency "
                               "reach and time-to-ack, plays scheduled but not played — from what devices "
                               "confirmed.")

RULES = {"StatisticsReport": {"GET": ANYONE}}  # reads are limited to the caller's areas
FORMATS = ("json", "csv", "xlsx", "html")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class StatisticsQuery(ma.Schema):
    area = ma.fields.Str(metadata={"description": "An area (with its subtree); default: the caller's areas "
                                                  "(everything for a province-wide account)"})
    from_ = ma.fields.Str(data_key="from", required=True,
                          metadata={"description": "First local date, YYYY-MM-DD (Asia/Ho_Chi_Minh)"})
    to = ma.fields.Str(required=True, metadata={"description": "Last local date, YYYY-MM-DD, included"})
    format = ma.fields.Str(load_default="json", validate=ma.validate.OneOf(FORMATS))


def roots(s: Any, area: str | None) -> list[str]:
    """The areas the report covers: `area` if the caller may see it, else the caller's own."""
    paths = scope(s)
    if area is not None:
        path = area_path(s, area)
        if path is None:
            fail(422, f"unknown area code {area}", field="area", location="query")
        if paths is not None and not any(path.startswith(p) for p in paths):
            fail(403, f"area {area} is outside your areas", field="area", location="query")
        return [area]
    if paths is None:
        from sqlalchemy import select

        from hub.store.models import Area
        return list(s.scalars(select(Area.code).where(Area.parent_code.is_(None)).order_by(Area.code)))
    return sorted(actor().areas or ())


@blp.route("/statistics")
class StatisticsReport(MethodView):
    @blp.arguments(StatisticsQuery, location="query", as_kwargs=True)
    @blp.response(200)
    @blp.fails(403, 422)
    def get(self, from_: str, to: str, format: str, area: str | None = None) -> Any:
        """Statistics of an area and period

        Báo cáo thống kê. One row per area, from `area` down to communes; parents sum their
        children. `format=csv|xlsx` downloads a file with Vietnamese headers, `html` a page to print.
        """
        rt = runtime()
        tz = ZoneInfo(rt.settings.timezone)
        try:
            period = statistics.Period.of(statistics.parse_day(from_, "from"), statistics.parse_day(to, "to"), tz)
            with rt.db.session() as s:
                report = statistics.compute(s, roots(s, area), period).as_dict()
        except statistics.PeriodError as exc:
            fail(422, str(exc), field=exc.field, location="query")
        if format == "json":
            return flask.jsonify(report)
        name = f"thong-ke-{area or 'tat-ca'}-{period.first_day}-{period.last_day}"
        if format == "html":
            return flask.Response(statistics_export.to_html(report), mimetype="text/html")
        body, mime = ((statistics_export.to_csv(report), "text/csv; charset=utf-8") if format == "csv"
                      else (statistics_export.to_xlsx(report), XLSX))
        return flask.Response(body, mimetype=mime,
                              headers={"Content-Disposition": f'attachment; filename="{name}.{format}"'})


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
