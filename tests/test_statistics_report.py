"""Statistics reports (báo cáo thống kê) from what devices confirmed: a seeded week matches the
figures counted by hand (tests/support/statistics_week.py), in JSON, CSV and XLSX alike; deleting a
content, a device and a user afterwards changes nothing; a parent is the sum of its children; the
week is the province's (a segment at 23:30 on Sunday is Sunday's); the API refuses bad input
naming the field and shows a commune account its own commune only; the CLI writes the same."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import update

from hub.access import accounts
from hub.access.actors import LOCAL_ADMIN, Actor, local_admin
from hub.api import create_app
from hub.fleet.registry import import_area_file
from hub.plugins import Plugins
from hub.reports import statistics
from hub.reports.output_context import HubOutputContext
from hub.runtime import Runtime
from hub.store.models import Command, Content, Delivery, User
from tests.support import loopback_vendor
from tests.support.api import assert_error
from tests.support.cli import hub_cli
from tests.support.dispatch import add, send, work
from tests.support.postgres import pg_url  # noqa: F401 - the throw-away PostgreSQL database fixture
from tests.support.services import DATA
from tests.support.statistics_week import EXPECTED, MONDAY, NOT_PLAYED, SUNDAY, TZ, seed

WEEK = f"from={MONDAY}&to={SUNDAY}"
COMMUNE_VIEWER = Actor(name="xa-viewer", roles=frozenset({"viewer"}), areas=frozenset({"27694"}))
ADDITIVE = ("devices", "bulletins", "deliveries", "deliveries_acked", "emergency_targeted", "emergency_acked",
            "not_played")


def _report(rt: Any, actor: Any = local_admin, query: str = WEEK) -> dict[str, Any]:
    resp = create_app(rt, authenticator=actor).test_client().get(f"/api/reports/statistics?{query}")
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def _by_area(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["area_code"]: r for r in report["areas"]}


def _matches_hand_count(report: dict[str, Any]) -> None:
    rows = _by_area(report)
    assert list(rows) == ["80", "794", "27694", "27697", "807", "28099"]  # parents first; no village row
    for code, want in EXPECTED.items():
        got = {k: rows[code][k] for k in want}
        assert got == want, code


def test_a_seeded_week_matches_the_hand_count_in_json_csv_and_xlsx(hub: Any) -> None:  # noqa: ANN001
    seed(hub)
    report = _report(hub)
    _matches_hand_count(report)
    missed = {d["device_id"]: sorted(i["command_id"] for i in d["items"]) for d in report["not_played_by_device"]}
    assert missed == NOT_PLAYED
    assert report["period_start"] == "2025-11-03T00:00:00+07:00" and report["period_end"] == "2025-11-10T00:00:00+07:00"

    client = create_app(hub, authenticator=local_admin).test_client()
    got = client.get(f"/api/reports/statistics?{WEEK}&format=csv")
    assert got.mimetype == "text/csv" and "attachment" in got.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(got.data.decode("utf-8-sig"))))
    csv_rows = {r["Mã địa bàn"]: r for r in table}
    xlsx = load_workbook(io.BytesIO(client.get(f"/api/reports/statistics?{WEEK}&format=xlsx").data))
    sheet = list(xlsx["Thống kê"].iter_rows(values_only=True))
    headers, xlsx_rows = sheet[1], {r[0]: dict(zip(sheet[1], r)) for r in sheet[2:]}
    assert "Số bản tin" in headers and "Số phút phát" in headers and "Tỷ lệ hoạt động (%)" in headers
    for code, want in EXPECTED.items():
        for header, key in (("Số bản tin", "bulletins"), ("Số phút phát", "minutes_broadcast"),
                            ("Số thiết bị", "devices"), ("Tỷ lệ hoạt động (%)", "uptime_percent"),
                            ("Tỷ lệ gửi thành công (%)", "delivery_success_percent"),
                            ("Số lượt tin khẩn cấp đã xác nhận", "emergency_acked"),
                            ("Số tin đã lên lịch nhưng không phát", "not_played")):
            assert float(csv_rows[code][header]) == want[key], (code, header)
            assert xlsx_rows[code][header] == want[key], (code, header)
        assert xlsx_rows[code]["Số bản tin khẩn cấp"] == want["bulletins_by_class"]["emergency"]
        assert xlsx_rows[code]["Số bản tin nguồn trung ương"] == want["bulletins_by_origin"]["national"]
    assert xlsx_rows["80"]["Cấp"] == "Tỉnh" and csv_rows["27694"]["Cấp"] == "Xã"
    missed_sheet = list(xlsx["Không phát"].iter_rows(values_only=True))[1:]
    assert sorted((r[0], r[3]) for r in missed_sheet) == [("A2", "P2"), ("C2", "E1"), ("C2", "P3")]

    page = client.get(f"/api/reports/statistics?{WEEK}&format=html")
    assert page.mimetype == "text/html" and "@media print" in page.text and "Số phút phát" in page.text


def test_deleting_a_content_a_device_and_a_user_afterwards_changes_nothing(hub: Any) -> None:  # noqa: ANN001
    seed(hub)
    with hub.db.session() as s:
        user = accounts.create_user(s, LOCAL_ADMIN, "bien-tap-1", ["editor"], ["80"])[0]
        s.execute(update(Command).values(issuer=user.name, issuer_id=user.id))
    before = _report(hub)
    client = create_app(hub, authenticator=local_admin).test_client()
    assert client.delete("/api/devices/C1").status_code == 204  # in the village, with plays and uptime
    assert client.delete("/api/users/bien-tap-1").status_code == 204
    with hub.db.session() as s:  # a content goes; the commands that played it stay, detached
        s.execute(update(Command).where(Command.content_id == "K1").values(content_id=None))
        s.delete(s.get(Content, "K1"))
    after = _report(hub)
    assert after["areas"] == before["areas"]
    assert after["not_played_by_device"] == before["not_played_by_device"]
    _matches_hand_count(after)


def test_a_parent_is_the_sum_of_its_children(hub: Any) -> None:  # noqa: ANN001
    seed(hub)
    rows = _by_area(_report(hub))
    for code, parent in rows.items():
        children = [r for r in rows.values() if r["parent_code"] == code]
        if not children:
            continue
        for key in ADDITIVE:
            assert parent[key] == sum(c[key] for c in children), (code, key)
        assert parent["minutes_broadcast"] == round(sum(c["minutes_broadcast"] for c in children), 2)
        for split in ("bulletins_by_class", "bulletins_by_origin", "bulletins_by_category"):
            for k, n in parent[split].items():
                assert n == sum(c[split].get(k, 0) for c in children), (code, split, k)
        assert sum(parent["bulletins_by_class"].values()) == parent["bulletins"]


def test_the_week_is_the_provinces_a_sunday_23_30_segment_is_sundays(hub: Any) -> None:  # noqa: ANN001
    seed(hub)
    sunday = _by_area(_report(hub, query=f"from={SUNDAY}&to={SUNDAY}"))["27697"]
    assert (sunday["bulletins"], sunday["minutes_broadcast"], sunday["bulletins_by_origin"]["national"]) == (1, 10.0, 1)
    next_monday = _by_area(_report(hub, query="from=2025-11-10&to=2025-11-10"))["27694"]
    assert (next_monday["bulletins"], next_monday["minutes_broadcast"]) == (1, 10.0)  # P4: 00:30 local
    first_monday = _by_area(_report(hub, query=f"from={MONDAY}&to={MONDAY}"))["80"]
    assert first_monday["bulletins"] == 3  # P1 at 06:00 local, still Sunday in UTC


def test_outputs_read_the_same_figures_through_the_context(hub: Any) -> None:  # noqa: ANN001
    seed(hub)
    start, end = datetime(2025, 11, 2, 17, tzinfo=timezone.utc), datetime(2025, 11, 9, 17, tzinfo=timezone.utc)
    rows = {r.area_code: r for r in HubOutputContext(hub).statistics(start, end)}
    assert set(rows) == set(EXPECTED)
    for code, want in EXPECTED.items():
        r = rows[code]
        assert (r.devices, r.uptime_percent, r.bulletins, r.minutes_broadcast, r.deliveries, r.deliveries_acked,
                r.emergency_targeted, r.emergency_acked, r.not_played) == tuple(
            want[k] for k in ("devices", "uptime_percent", "bulletins", "minutes_broadcast", "deliveries",
                              "deliveries_acked", "emergency_targeted", "emergency_acked", "not_played"))
        assert dict(r.bulletins_by_class) == want["bulletins_by_class"]
    assert rows["28099"].parent_code == "807" and rows["80"].level == "province"
    assert rows["80"].period_start.isoformat() == "2025-11-03T00:00:00+07:00"
    assert [r.area_code for r in HubOutputContext(hub).statistics(start, end, "807")] == ["807", "28099"]


def test_the_api_refuses_bad_input_and_keeps_a_commune_to_itself(hub: Any) -> None:  # noqa: ANN001
    seed(hub)
    client = create_app(hub, authenticator=local_admin).test_client()
    for query, field in ((f"to={SUNDAY}", "from"), (f"from=2025-13-01&to={SUNDAY}", "from"),
                         (f"from={SUNDAY}&to={MONDAY}", "to"), (f"{WEEK}&format=pdf", "format"),
                         (f"{WEEK}&area=nowhere", "area"), (f"{WEEK}&colour=red", "colour")):
        assert_error(client.get(f"/api/reports/statistics?{query}"), 422, "query", field)
    viewer = create_app(hub, authenticator=lambda _r: COMMUNE_VIEWER).test_client()
    own = viewer.get(f"/api/reports/statistics?{WEEK}").get_json()
    assert [r["area_code"] for r in own["areas"]] == ["27694"]
    assert {k: own["areas"][0][k] for k in EXPECTED["27694"]} == EXPECTED["27694"]
    assert [d["device_id"] for d in own["not_played_by_device"]] == ["A2"]
    assert_error(viewer.get(f"/api/reports/statistics?{WEEK}&area=807"), 403, "query", "area")
    assert_error(viewer.get(f"/api/reports/statistics?{WEEK}&area=80"), 403, "query", "area")


def test_dispatch_and_the_recorder_keep_the_devices_area_and_the_contents_facts(hub: Any) -> None:  # noqa: ANN001
    add(hub, "ok-1", area="27697")
    with hub.db.session() as s:
        s.add(Content(id="KX", title="Lịch tiêm phòng", kind="audio_file", created_by="t", category="y-te",
                      area_code="27697", created_at=datetime.now(timezone.utc),
                      media={"uri": "http://127.0.0.1:9/kx.mp3", "duration_s": 30}))
    cmd = send(hub, {"verb": "play", "content_id": "KX", "target": {"devices": ["OK-1"]}}).command
    work(hub)
    with hub.db.session() as s:
        assert s.query(Delivery).filter_by(command_id=cmd.id).one().area_code == "27697"
    from hub.delivery import as_run
    from tests.support.as_run import segments
    with hub.db.session() as s:
        as_run.record(s, [as_run.Seen("OK-1", datetime.now(timezone.utc), "playing", command_id=cmd.id)], set(),
                      datetime.now(timezone.utc))
    seg = segments(hub, "OK-1")[0]
    assert (seg.area_code, seg.content_title, seg.content_category, seg.content_origin) == \
        ("27697", "Lịch tiêm phòng", "y-te", "local")


def test_the_cli_writes_the_same_figures(hub: Any, config_file: Path, tmp_path: Path) -> None:  # noqa: ANN001
    seed(hub)
    out = tmp_path / "tuan.xlsx"
    r = hub_cli(config_file, "reports", "statistics", "--area", "794", "--from", str(MONDAY), "--to", str(SUNDAY),
                "-o", str(out))
    assert r.returncode == 0, r.stderr
    sheet = list(load_workbook(out)["Thống kê"].iter_rows(values_only=True))
    rows = {row[0]: dict(zip(sheet[1], row)) for row in sheet[2:]}
    assert set(rows) == {"794", "27694", "27697"}
    assert rows["794"]["Số bản tin"] == EXPECTED["794"]["bulletins"]
    assert rows["794"]["Số phút phát"] == EXPECTED["794"]["minutes_broadcast"]
    r = hub_cli(config_file, "reports", "statistics", "--from", str(MONDAY), "--to", str(SUNDAY), "--format", "json")
    assert r.returncode == 0, r.stderr
    _matches_hand_count(json.loads(r.stdout))
    table = hub_cli(config_file, "reports", "statistics", "--area", "28099", "--from", str(MONDAY), "--to",
                    str(SUNDAY))
    assert "28099" in table.stdout and "50.0" in table.stdout
    bad = hub_cli(config_file, "reports", "statistics", "--from", "2025-11-09", "--to", "2025-11-03")
    assert bad.returncode != 0 and "--to" in bad.stderr


@pytest.mark.postgres
def test_the_seeded_week_matches_on_postgresql(settings: Any, pg_url: str) -> None:  # noqa: ANN001, F811
    plugins = Plugins()
    plugins.register_module(loopback_vendor, "loopback")
    rt = Runtime(replace(settings, database_url=pg_url), plugins=plugins)
    try:
        rt.db.create()
        with rt.db.session() as s:
            import_area_file(s, DATA / "legacy-three-level.yaml")
        seed(rt)
        with rt.db.session() as s:
            report = statistics.compute(s, ["80"], statistics.Period.of(MONDAY, SUNDAY, TZ)).as_dict()
        _matches_hand_count(report)
    finally:
        rt.close()
