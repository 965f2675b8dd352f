"""What the console's pages show: the message catalogues cover every string, times are the
province's, a device's history and deliveries, the dashboard of an area, and the event stream of a
command that has ended."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from sqlalchemy import update

import hub.console
from hub.access.actors import LOCAL_ADMIN
from hub.api import create_app
from hub.delivery.dispatch import submit
from hub.fleet.registry import upsert_device
from hub.runtime import Runtime
from hub.schemas import CommandSchema
from hub.store.db import utcnow
from hub.store.models import Delivery, DeviceEvent
from tests.support.accounts import make_user
from tests.support.console import HTML, PASSWORD, client_sign_in

CONSOLE = Path(hub.console.__file__).parent
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}


def _extracted() -> set[str]:
    """Every string the console's code and templates hand to the catalogue, as pybabel extracts them."""
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    return {msg for _, _, msg, *_ in extract_from_dir(str(CONSOLE), method_map, keywords=KEYWORDS) if msg}


def _catalogue(lang: str) -> dict[str, str]:
    with (CONSOLE / "translations" / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return {m.id: m.string for m in read_po(fh) if m.id}


def test_every_string_of_the_console_has_its_vietnamese_and_a_place_in_english() -> None:
    wanted = _extracted()
    vi, en = _catalogue("vi"), _catalogue("en")
    assert len(wanted) > 150
    assert sorted(wanted - vi.keys()) == [], "strings missing from translations/vi (pybabel update)"
    assert sorted(m for m in wanted if not vi[m]) == [], "strings not yet translated into Vietnamese"
    assert sorted(wanted - en.keys()) == [], "strings missing from translations/en"
    for msgid, text in vi.items():  # a placeholder lost in translation would raise at render time
        assert sorted(re.findall(r"%\(\w+\)s", msgid)) == sorted(re.findall(r"%\(\w+\)s", text)), msgid


@pytest.fixture
def admin(rt: Runtime, legacy_areas: None, vendors: dict[str, str]):  # noqa: ANN201
    with rt.db.session() as s:
        for did, area, kind in (("LOA-1", "27694", "speaker"), ("LOA-2", "27694", "speaker"),
                                ("BANG-1", "27694", "led_board"), ("LOA-9", "28099", "speaker")):
            upsert_device(s, rt.plugins, {"id": did, "name": f"Thiết bị {did}", "vendor": vendors[kind], "kind": kind,
                                          "area_code": area, "address": did.lower(), "tags": []})
    make_user(rt, "quan-tri-794", ["administrator"], ["794"], password=PASSWORD)
    client = create_app(rt).test_client()
    client_sign_in(client, "quan-tri-794")
    return client


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_device_page_shows_its_history_and_deliveries_in_the_provinces_time(rt: Runtime, admin) -> None:
    at = datetime(2026, 3, 2, 23, 30, tzinfo=timezone.utc)  # 06:30 on 3 March in Vietnam
    with rt.db.session() as s:
        s.add(DeviceEvent(device_id="LOA-1", at=at, state="offline", previous="online", reason="no heartbeat"))
        s.add(DeviceEvent(device_id="LOA-1", at=at + timedelta(minutes=5), state="online", previous="offline"))
    sub = submit(rt, LOCAL_ADMIN, CommandSchema().load({"verb": "stop", "target": {"devices": ["LOA-1"]}}))
    page = _text(admin.get("/console/devices/LOA-1", headers=HTML).get_data(as_text=True))
    assert "03/03/2026 06:30:00 đang hoạt động mất kết nối no heartbeat" in page
    assert "03/03/2026 06:35:00 mất kết nối đang hoạt động" in page
    assert "dừng phát" in page and "local-admin" in page, "its past delivery, with the command and who sent it"
    html = admin.get("/console/devices/LOA-1", headers=HTML).get_data(as_text=True)
    assert 'datetime="2026-03-03T06:30:00+07:00"' in html
    assert f"/console/commands/{sub.command.id}" in html
    assert admin.get("/console/devices/LOA-9", headers=HTML).status_code == 404, "another district's device"


def test_the_dashboard_of_an_area_counts_its_devices_and_running_emergencies(rt: Runtime, admin) -> None:
    submit(rt, LOCAL_ADMIN, CommandSchema().load({"verb": "stop", "priority": "emergency",
                                                  "target": {"areas": ["27694"]}}))
    page = admin.get("/console/?area=27694", headers=HTML).get_data(as_text=True)
    assert re.search(r'data-count="unknown">\s*<div class="n">3<', page), "three devices never heard from"
    assert re.search(r'data-count="commands-today"><div class="n">1<', page)
    running = _text(page.split("Phát khẩn cấp đang diễn ra", 1)[1])
    assert "1 / 3 (0 đã xác nhận)" in running, "the board cannot stop a sound: ended unsupported; no speaker answered"
    other = admin.get("/console/?area=28099", headers=HTML).get_data(as_text=True)
    assert re.search(r'data-count="unknown">\s*<div class="n">3<', other), "an area not theirs: their own areas"


def test_english_on_request_vietnamese_otherwise(rt: Runtime, admin) -> None:
    assert "<h1>Thiết bị" in admin.get("/console/devices", headers=HTML).get_data(as_text=True)
    r = admin.get("/console/lang/en?next=/console/devices", headers=HTML)
    assert r.status_code == 302 and r.headers["Location"] == "/console/devices"
    assert "<h1>Devices" in admin.get("/console/devices", headers=HTML).get_data(as_text=True)
    r = admin.get("/console/lang/fr?next=https://example.org/", headers=HTML)
    assert r.headers["Location"] == "/console/", "another site is never where it leads"
    assert "<h1>Devices" in admin.get("/console/devices", headers=HTML).get_data(as_text=True)
    admin.get("/console/lang/vi", headers=HTML)
    assert "<h1>Thiết bị" in admin.get("/console/devices", headers=HTML).get_data(as_text=True)


def test_the_event_stream_of_an_ended_command_sends_every_row_then_done(rt: Runtime, admin) -> None:
    sub = submit(rt, LOCAL_ADMIN, CommandSchema().load({"verb": "set_volume", "params": {"level": 30},
                                                        "target": {"areas": ["27694"]}}))
    with rt.db.session() as s:  # as the ingest writes a device's answer
        s.execute(update(Delivery).where(Delivery.command_id == sub.command.id, Delivery.device_id == "LOA-1")
                  .values(state="acked", finished_at=utcnow()))
        s.execute(update(Delivery).where(Delivery.command_id == sub.command.id, Delivery.device_id == "LOA-2")
                  .values(state="failed", reason="link down", finished_at=utcnow()))
    r = admin.get(f"/console/commands/{sub.command.id}/events", headers={"Accept": "text/event-stream"})
    assert r.mimetype == "text/event-stream"
    body = r.get_data(as_text=True)
    names = re.findall(r"^event: (\w+)$", body, flags=re.M)
    assert names == ["delivery", "delivery", "delivery", "summary", "done"]
    assert "thiết bị không hỗ trợ" in body and "link down" in body and "Thiết bị LOA-1" in body
    page = _text(admin.get(f"/console/commands/{sub.command.id}", headers=HTML).get_data(as_text=True))
    assert "Tất cả thiết bị đã có kết quả cuối cùng." in page and "3/3 thiết bị" in page
