"""The console's statistics page (/console/reports): for a seeded week of as-run rows
(tests/support/statistics_week.py) it shows the report's own figures per area with the parent's
totals, embeds the chart's data from those figures, links downloads that a signed-in browser can
fetch from the API, names its periods in the province's dates, and refuses another area as a
Vietnamese sentence."""
from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import date
from typing import Any

from hub.access.actors import local_admin
from hub.api import create_app
from hub.console.reports import period_days
from tests.support.accounts import make_user
from tests.support.console import HTML, PASSWORD, client_sign_in
from tests.support.statistics_week import EXPECTED, MONDAY, SUNDAY, seed

WEEK = f"from={MONDAY}&to={SUNDAY}"
SHOWN = ("bulletins", "minutes_broadcast", "uptime_percent", "delivery_success_percent", "emergency_reach_percent",
         "not_played")


def _api_report(rt: Any, query: str) -> dict[str, Any]:
    resp = create_app(rt, authenticator=local_admin).test_client().get(f"/api/reports/statistics?{query}")
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def _table(page: str) -> dict[str, dict[str, str]]:
    """The page's table: area code → {figure: the value in its data-value attribute}."""
    rows: dict[str, dict[str, str]] = {}
    for code, body in re.findall(r'<tr data-area="([^"]+)"[^>]*>(.*?)</tr>', page, re.S):
        rows[code] = dict(re.findall(r'data-key="(\w+)" data-value="([^"]*)"', body))
    return rows


def _value(v: Any) -> str:
    return "" if v is None else str(v)


def _signed_in(rt: Any, name: str, roles: list[str], areas: list[str]) -> Any:
    make_user(rt, name, roles, areas, password=PASSWORD)
    client = create_app(rt).test_client()
    client_sign_in(client, name)
    return client


def test_the_page_shows_the_reports_figures_with_the_parents_totals_and_the_charts_data(hub: Any) -> None:
    seed(hub)
    client = _signed_in(hub, "xem-tan-an", ["viewer"], ["794"])
    resp = client.get(f"/console/reports?area=794&period=custom&{WEEK}", headers=HTML)
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert '<html lang="vi">' in page and "Thống kê" in page

    report = _api_report(hub, f"area=794&{WEEK}")
    table = _table(page)
    assert list(table) == ["794", "27694", "27697"], "the district first (its totals), then its communes"
    for row in report["areas"]:
        assert table[row["area_code"]] == {k: _value(row[k]) for k in SHOWN}, row["area_code"]
    assert table["794"]["minutes_broadcast"] == str(EXPECTED["794"]["minutes_broadcast"])  # 48.0, counted by hand
    assert re.search(r'<tr data-area="794" class="total">', page)
    assert ">81,82<" in page, "a percentage written as Vietnamese readers write numbers"

    chart = json.loads(html.unescape(re.search(r"data-report-chart='([^']*)'", page).group(1)))
    assert chart["codes"] == ["27694", "27697"]
    assert chart["minutes"] == [EXPECTED["27694"]["minutes_broadcast"], EXPECTED["27697"]["minutes_broadcast"]]
    assert "/api/" not in page.split("data-report-chart")[1].split("</div>")[0], "no request needed for the chart"


def test_a_signed_in_browser_downloads_the_csv_xlsx_and_printable_page_it_links(hub: Any) -> None:
    seed(hub)
    client = _signed_in(hub, "xem-tan-an", ["viewer"], ["794"])
    page = client.get(f"/console/reports?area=794&period=custom&{WEEK}", headers=HTML).get_data(as_text=True)
    links = {fmt: html.unescape(re.search(rf'id="export-{fmt}" href="([^"]+)"', page).group(1))
             for fmt in ("csv", "xlsx", "html")}
    got = client.get(links["csv"])  # the session cookie alone: what the browser sends on a click
    assert got.status_code == 200 and got.mimetype == "text/csv"
    assert "attachment" in got.headers["Content-Disposition"]
    rows = {r["Mã địa bàn"]: r for r in csv.DictReader(io.StringIO(got.data.decode("utf-8-sig")))}
    assert list(rows) == ["794", "27694", "27697"]
    assert float(rows["794"]["Số phút phát"]) == EXPECTED["794"]["minutes_broadcast"]
    xlsx = client.get(links["xlsx"])
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    printable = client.get(links["html"])
    assert printable.status_code == 200 and printable.mimetype == "text/html"


def test_another_area_is_refused_in_vietnamese(hub: Any) -> None:
    seed(hub)
    client = _signed_in(hub, "xem-phuong-1", ["viewer"], ["27694"])
    for code in ("807", "99999"):  # another district, and a code that does not exist: told alike
        resp = client.get(f"/console/reports?area={code}", headers=HTML)
        assert resp.status_code == 403
        assert f"Địa bàn {code} nằm ngoài địa bàn của bạn" in resp.get_data(as_text=True)
    own = client.get(f"/console/reports?period=custom&{WEEK}", headers=HTML).get_data(as_text=True)
    assert list(_table(own)) == ["27694"], "without an area: the reader's own"
    bad = client.get("/console/reports?period=custom&from=2025-11-09&to=2025-11-03", headers=HTML)
    assert bad.status_code == 422
    assert "Ngày cuối không được trước ngày đầu." in bad.get_data(as_text=True)


def test_the_named_periods_are_local_weeks_and_months() -> None:
    wednesday = date(2025, 11, 5)
    assert period_days("this_week", wednesday) == (MONDAY, SUNDAY)
    assert period_days("last_week", wednesday) == (date(2025, 10, 27), date(2025, 11, 2))
    assert period_days("this_month", wednesday) == (date(2025, 11, 1), date(2025, 11, 30))
    assert period_days("this_month", date(2025, 12, 31)) == (date(2025, 12, 1), date(2025, 12, 31))
