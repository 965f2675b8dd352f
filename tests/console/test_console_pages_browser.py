"""The console's emergency, contents, programmes and relay pages in a real browser (Debian's headless
Chromium) against the real hub, Redis, Mosquitto and simulated speakers and boards, in Vietnamese.
Screenshots land in test-artifacts/console/<test>/."""
from __future__ import annotations

import re
from collections import Counter

import pytest
from sqlalchemy import select

from hub.store.models import TERMINAL_STATES, Delivery
from hub.testing import scaled
from tests.support.console import OPERATOR, REFUSING, SPEAKERS, sign_in

pytestmark = pytest.mark.slow

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
