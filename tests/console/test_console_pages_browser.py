"""The console's emergency, contents, programmes and relay pages in a real browser (Debian's headless
Chromium) against the real hub, Redis, Mosquitto and simulated speakers and boards, in Vietnamese.
Screenshots land in test-artifacts/console/<test>/."""
from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from hub.access.actors import LOCAL_ADMIN
from hub.broadcast import editing
from hub.store.models import TERMINAL_STATES, Content, Delivery
from hub.testing import scaled
from tests.support.accounts import make_user
from tests.support.console import BOARD, OPERATOR, PASSWORD, PHONE, REFUSING, sign_in
from tests.support.programmes import next_monday, published_content, week_calendars

pytestmark = pytest.mark.slow

EDITOR, APPROVER = "bien-tap-phuong-1", "duyet-tan-an"
VACCINATION = "Trạm y tế phường một tiêm chủng mở rộng cho trẻ em vào sáng thứ bảy, mùng mười hai tháng mười hai."
STORM = "Bão số 9 sắp đổ bộ vào Tân An. Người dân ở trong nhà, tránh xa bờ sông."


def test_an_operator_sees_the_scope_confirms_and_follows_the_emergency_to_the_end(console_hub, page, shots) -> None:
    sign_in(page, console_hub.url, OPERATOR)
    page.click("nav.menu >> text=Khẩn cấp")
    assert page.inner_text("h1") == "Phát khẩn cấp"
    assert page.get_attribute("html", "lang") == "vi"
    page.fill("#text", STORM)
    page.check("input[name=areas][value='27694']")
    shots.take(page, "emergency-form")
    page.click("#preview")
    assert page.inner_text("h1") == "Xác nhận phát khẩn cấp"
    speakers = console_hub.speakers("27694")
    assert page.inner_text("#scope-sentence") == f"{len(speakers) + 1} loa/bảng ở 1 xã"
    kinds = page.inner_text("#scope-kinds")
    assert f"cụm loa truyền thanh: {len(speakers)} trong số {len(speakers)} thiết bị đã chọn" in kinds
    assert "bảng tin điện tử: 1 trong số 1 thiết bị đã chọn" in kinds
    assert page.inner_text("#emergency-text") == STORM
    shots.take(page, "emergency-confirm")
    page.click("#fire")
    page.wait_for_url(re.compile(r"/console/commands/[0-9a-f]{32}$"))
    command_id = page.url.rsplit("/", 1)[1]
    assert page.inner_text("h1") == "phát bản tin · khẩn cấp"
    page.wait_for_selector("#live[data-state=done]", timeout=scaled(60) * 1000)
    shown = {row.get_attribute("data-device"): row.get_attribute("data-state")
             for row in page.query_selector_all("#delivery-rows tr")}
    assert sorted(shown) == sorted(speakers), "every speaker of the commune has its row"
    assert set(shown.values()) <= set(TERMINAL_STATES), "every row reached a terminal state"
    with console_hub.rt.db.session() as s:
        stored = {d.device_id: d.state for d in s.scalars(select(Delivery).where(Delivery.command_id == command_id))}
    assert shown == stored, "the page shows what the hub recorded"
    assert shown[REFUSING.upper()] == "failed"
    assert Counter(shown.values())["acked"] == len(speakers) - 1
    shots.take(page, "emergency-progress-done")
    page.click("#emergency-other")  # the same emergency's board, shown the text
    page.wait_for_selector("#live[data-state=done]", timeout=scaled(60) * 1000)
    [board] = page.query_selector_all("#delivery-rows tr")
    assert board.get_attribute("data-device") == BOARD.upper() and board.get_attribute("data-state") == "acked"


HEAR = """async () => {
  const a = document.getElementById("speech");
  a.preload = "auto";
  a.load();
  await new Promise((ok, no) => { a.onloadedmetadata = ok; a.onerror = () => no(String(a.error && a.error.code)); });
  return a.duration;
}"""


def test_an_editor_writes_and_submits_another_person_approves_and_publishes(console_hub, browser, shots) -> None:
    make_user(console_hub.rt, EDITOR, ["editor"], ["27694"], password=PASSWORD)
    make_user(console_hub.rt, APPROVER, ["approver"], ["794"], password=PASSWORD)
    editor_ctx, approver_ctx = browser.new_context(), browser.new_context()
    try:
        page = editor_ctx.new_page()
        sign_in(page, console_hub.url, EDITOR)
        page.click("nav.menu >> text=Nội dung")
        page.click("#compose")
        assert page.inner_text("h1") == "Viết bản tin"
        page.fill("#title", "Lịch tiêm chủng tháng 12")
        page.select_option("#area_code", "27694")
        page.fill("#body", VACCINATION)
        shots.take(page, "compose")
        page.click("#save")
        page.wait_for_url(re.compile(r"/console/contents/[0-9a-f]{32}$"))
        content_id = page.url.rsplit("/", 1)[1]
        assert page.inner_text("#content-status") == "bản nháp"
        assert page.evaluate(HEAR) > 1.0, "the browser plays the bulletin spoken by the offline voice"
        assert page.query_selector("#action-approve") is None, "an editor is offered no approval"
        page.click("#action-submit")
        assert page.inner_text("#content-status") == "chờ duyệt"
        shots.take(page, "submitted")

        other = approver_ctx.new_page()
        sign_in(other, console_hub.url, APPROVER)
        other.goto(console_hub.url + "/console/contents?status=submitted")
        other.click(f"tr[data-content='{content_id}'] a")
        other.click("#action-reject")  # without a reason: the workflow's rule, told in Vietnamese
        assert other.inner_text(".refusal p") == "Hãy ghi lý do khi trả lại, để người viết biết cần sửa gì."
        other.click("#action-approve")
        assert other.inner_text("#content-status") == "đã duyệt, chưa phát hành"
        other.click("#action-publish")
        assert other.inner_text("#content-status") == "đã phát hành"
        shots.take(other, "published")
        page.reload()
        assert page.inner_text("#content-status") == "đã phát hành", "the author sees it published"
    finally:
        editor_ctx.close()
        approver_ctx.close()
    with console_hub.rt.db.session() as s:
        content = s.get(Content, content_id)
        assert (content.created_by, content.reviewed_by, content.published_by) == (EDITOR, APPROVER, APPROVER)
        assert (content.media or {}).get("key"), "published and spoken for the loudspeakers"


def test_the_week_of_programmes_and_the_as_run_log_of_a_day(console_hub, page, shots) -> None:
    monday = next_monday()
    news, _weekly = week_calendars(monday)
    editing.create(console_hub.rt, LOCAL_ADMIN, {"name": "Thời sự sáng chiều", "ical": news,
                                                 "target": {"areas": ["27697"]},
                                                 "content_id": published_content(console_hub.rt)})
    sign_in(page, console_hub.url, OPERATOR)
    page.click("nav.menu >> text=Lịch phát")
    page.select_option("select[name=area]", "27697")  # the form submits itself
    page.wait_for_url(re.compile(r"area=27697"))
    while page.query_selector(f"td[data-day='{monday.date().isoformat()}']") is None:
        page.click("#next-week")
    thursday = page.query_selector(f"td[data-day='{(monday + timedelta(days=3)).date().isoformat()}']")
    assert [s.get_attribute("data-start") for s in thursday.query_selector_all(".slot")] == ["06:30", "17:00"]
    assert "Thời sự sáng chiều" in thursday.inner_text()
    shots.take(page, "week")
    page.click("nav.menu >> text=Nhật ký phát")
    assert page.inner_text("h1") == "Nhật ký phát"
    outcomes = {r.get_attribute("data-device"): r.get_attribute("data-outcome")
                for r in page.query_selector_all("#as-run tr[data-device]")}
    assert outcomes.get(REFUSING.upper()) == "not_played", "the emergency the faulty speaker refused never aired"
    shots.take(page, "as-run")


def test_an_operator_relays_a_station_to_a_commune_and_stops_it(console_hub, page, shots, tmp_path) -> None:
    stations = tmp_path / "stations.yaml"
    stations.write_text("stations:\n  - {id: tinh, name: Đài Phát thanh tỉnh, url: 'http://radio.example.vn/tinh'}\n",
                        encoding="utf-8")
    before, console_hub.rt.settings.stations_file = console_hub.rt.settings.stations_file, str(stations)
    try:
        sign_in(page, console_hub.url, OPERATOR)
        page.click("nav.menu >> text=Phát trực tiếp và tiếp sóng")
        assert page.inner_text("#no-relays") == "Chưa có phiên tiếp sóng nào."
        page.check("input[name=station_id][value=tinh]")
        page.check("#relay-form input[name=areas][value='27697']")
        shots.take(page, "relay-form")
        page.click("#start-relay")
        page.wait_for_url(re.compile(r"/console/commands/[0-9a-f]{32}$"))
        assert page.inner_text("h1") == "bắt đầu tiếp sóng"
        page.wait_for_selector("#live[data-state=done]", timeout=scaled(60) * 1000)
        rows = page.query_selector_all("#delivery-rows tr")
        assert sorted(r.get_attribute("data-device") for r in rows) == console_hub.speakers("27697")
        page.click("nav.menu >> text=Phát trực tiếp và tiếp sóng")
        [row] = page.query_selector_all("#relay-rows tr[data-relay]")
        assert row.get_attribute("data-desired") == "running"
        shots.take(page, "relay-list")
        page.click("#relay-rows button[data-stop]")
        page.wait_for_url(re.compile(r"/console/commands/[0-9a-f]{32}$"))
        assert page.inner_text("h1") == "dừng tiếp sóng"
        page.click("nav.menu >> text=Phát trực tiếp và tiếp sóng")
        assert page.get_attribute("#relay-rows tr[data-relay]", "data-desired") == "stopped"
        assert page.query_selector("#relay-rows button[data-stop]") is None
        shots.take(page, "relay-stopped")
    finally:
        console_hub.rt.settings.stations_file = before


def test_the_new_pages_fit_a_phones_width(console_hub, browser, shots) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        sign_in(page, console_hub.url, OPERATOR)
        for path, name in (("/console/emergency", "phone-emergency"), ("/console/contents", "phone-contents"),
                           ("/console/programmes?area=27697", "phone-programmes"), ("/console/as-run", "phone-as-run"),
                           ("/console/relay", "phone-relay")):
            page.goto(console_hub.url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} is {width}px wide on a {PHONE['width']}px screen"
            shots.take(page, name)
    finally:
        context.close()
