"""The console in a real browser (Debian's headless Chromium), against the real hub, Redis, Mosquitto
and simulated speakers: what a commune officer sees, in Vietnamese unless they switch to English.
Screenshots land in test-artifacts/console/<test>/."""
from __future__ import annotations

import re
from collections import Counter

import pytest
from sqlalchemy import select

from hub.store.models import TERMINAL_STATES, Delivery
from hub.testing import scaled
from tests.support.console import BOARD, OPERATOR, PHONE, REFUSING, SPEAKERS, reload_until, sign_in

pytestmark = pytest.mark.slow

# Counts every change the live stream makes to the delivery table, from the page's first moment.
WATCH_ROWS = """
window.__rowChanges = 0;
document.addEventListener("DOMContentLoaded", () => {
  const rows = document.getElementById("delivery-rows");
  if (rows) new MutationObserver((m) => { window.__rowChanges += m.length; }).observe(rows, {childList: true});
});
"""


def test_a_browser_without_a_session_is_sent_to_sign_in_in_vietnamese(console_hub, page, shots) -> None:
    page.goto(console_hub.url + "/")
    assert re.search(r"/console/login\?next=", page.url)
    assert page.get_attribute("html", "lang") == "vi"
    assert page.inner_text("h1") == "Đăng nhập"
    assert page.inner_text("label[for=password]") == "Mật khẩu"
    shots.take(page, "sign-in")
    page.fill("#name", OPERATOR)
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    assert page.inner_text("[role=alert]") == "Sai tên tài khoản hoặc mật khẩu."
    shots.take(page, "wrong-password")


def test_signed_in_the_dashboard_counts_the_district_devices(console_hub, page, shots) -> None:
    sign_in(page, console_hub.url, OPERATOR)
    assert page.inner_text("h1") == "Tổng quan"
    assert "Thiết bị" in page.inner_text("nav.menu") and "Gửi lệnh" in page.inner_text("nav.menu")
    in_district = SPEAKERS["27694"] + SPEAKERS["27697"] + 1  # the board too; Xã Long Hựu Đông is not theirs
    assert reload_until(page, lambda p: int(p.inner_text("[data-count=online] .n")) == in_district, 10), \
        "every device of the district shows online"
    assert page.inner_text("[data-count=online] .label") == "đang hoạt động"
    assert page.inner_text("#no-emergency") == "Không có phát khẩn cấp nào đang diễn ra."
    assert "UTC+07:00" in page.inner_text("footer")
    page.wait_for_selector("#hourly canvas")  # the chart library drew today's commands
    shots.take(page, "dashboard")


def test_a_command_to_a_commune_is_followed_live_until_every_device_ends(console_hub, page, shots) -> None:
    sign_in(page, console_hub.url, OPERATOR)
    page.add_init_script(WATCH_ROWS)
    page.click("nav.menu >> text=Gửi lệnh")
    page.check("input[name=areas][value='27694']")
    page.select_option("#verb", "set_volume")
    page.wait_for_selector("#p_level")  # htmx brought the verb's fields
    page.fill("#p_level", "35")
    shots.take(page, "command-form")
    page.click("#send")
    page.wait_for_url(re.compile(r"/console/commands/[0-9a-f]{32}$"))
    command_id = page.url.rsplit("/", 1)[1]
    assert page.inner_text("h1").startswith("đặt âm lượng")
    shots.take(page, "progress-start")
    page.wait_for_selector("#live[data-state=done]", timeout=scaled(60) * 1000)
    assert page.inner_text("#live-status") == "Tất cả thiết bị đã có kết quả cuối cùng."
    assert page.evaluate("window.__rowChanges") > 0, "rows changed in place, from the event stream"
    shown = {row.get_attribute("data-device"): row.get_attribute("data-state")
             for row in page.query_selector_all("#delivery-rows tr")}
    with console_hub.rt.db.session() as s:
        stored = {d.device_id: d.state for d in s.scalars(select(Delivery).where(Delivery.command_id == command_id))}
    assert shown == stored, "the page shows what the hub recorded, device by device"
    assert set(shown.values()) <= set(TERMINAL_STATES)
    speakers = console_hub.speakers("27694")
    assert sorted(shown) == sorted([*speakers, BOARD.upper()])
    assert Counter(shown.values()) == {"acked": len(speakers) - 1, "failed": 1, "unsupported": 1}
    assert shown[REFUSING.upper()] == "failed"
    summary = page.inner_text("#summary")
    assert f"{len(shown)}/{len(shown)} thiết bị đã có kết quả cuối cùng." in summary
    assert "thiết bị đã xác nhận: 5" in summary and "thiết bị không hỗ trợ: 1" in summary
    shots.take(page, "progress-done")


def test_a_command_outside_the_operators_areas_is_refused_in_vietnamese(console_hub, page, shots) -> None:
    sign_in(page, console_hub.url, OPERATOR)
    page.goto(console_hub.url + "/console/commands/new")
    assert page.query_selector("input[name=areas][value='28099']") is None, "the picker offers only their areas"
    page.evaluate("""() => {  // a forged form: a commune of another district
        const box = document.createElement("input");
        Object.assign(box, {type: "checkbox", name: "areas", value: "28099", checked: true});
        document.getElementById("command-form").appendChild(box);
    }""")
    page.select_option("#verb", "stop")
    page.wait_for_selector("#params >> text=Lệnh này không cần tham số.")
    page.click("#send")
    refusal = page.inner_text(".refusal p")
    assert refusal == ("Lệnh bị từ chối: lựa chọn của bạn gồm thiết bị hoặc địa bàn nằm ngoài địa bàn bạn được giao. "
                       "Lệnh chưa được gửi.")
    shots.take(page, "refused")


def test_the_language_switches_to_english_and_back(console_hub, page, shots) -> None:
    sign_in(page, console_hub.url, OPERATOR)
    page.click("nav.menu >> text=Thiết bị")
    assert page.inner_text("h1") == "Thiết bị"
    page.click("a[data-lang=en]")
    assert page.get_attribute("html", "lang") == "en"
    assert page.inner_text("h1") == "Devices", "the same page, in English"
    assert "Overview" in page.inner_text("nav.menu")
    shots.take(page, "devices-english")
    page.click("a[data-lang=vi]")
    assert page.get_attribute("html", "lang") == "vi"
    assert page.inner_text("h1") == "Thiết bị"
    page.click("text=Đăng xuất")
    page.wait_for_url(re.compile(r"/console/login$"))
    page.goto(console_hub.url + "/console/devices")
    assert page.inner_text("h1") == "Đăng nhập", "signed out: the pages ask to sign in again"


def test_a_device_page_shows_its_state_and_its_deliveries(console_hub, page, shots) -> None:
    sign_in(page, console_hub.url, OPERATOR)
    page.goto(console_hub.url + "/console/devices?area=27697")
    assert page.inner_text("#device-list p.muted") == f"{SPEAKERS['27697']} thiết bị"
    page.select_option("select[name=state]", "offline")  # htmx filters in place
    page.wait_for_selector("#device-list >> text=Không có thiết bị phù hợp.")
    page.select_option("select[name=state]", "online")
    page.wait_for_selector("tr[data-device='SPK-27697-01']")
    page.click("tr[data-device='SPK-27697-01'] a")
    assert reload_until(page, lambda p: p.inner_text("#device-state") == "đang hoạt động", 10)
    assert "Phường 2" in page.inner_text("main p.muted")
    shots.take(page, "device")


def test_at_a_phones_width_nothing_spills_sideways(console_hub, browser, shots) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        sign_in(page, console_hub.url, OPERATOR)
        for path, name in (("/console/", "phone-dashboard"), ("/console/devices", "phone-devices"),
                           ("/console/commands/new", "phone-send"), ("/console/commands", "phone-commands")):
            page.goto(console_hub.url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} is {width}px wide on a {PHONE['width']}px screen"
            shots.take(page, name)
        assert page.get_attribute("html", "lang") == "vi"
    finally:
        context.close()
