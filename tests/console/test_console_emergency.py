"""The emergency button through a browser session (the Flask test client, real accounts, Redis and
espeak-ng): the confirmation spells out the hub's own scope before anything is sent, firing goes
through the one-step emergency, and roles, areas and the CSRF token are checked as for the API."""
from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.api import create_app
from hub.fleet.registry import upsert_device
from hub.runtime import Runtime
from hub.store.emergency_tables import Emergency
from tests.support.accounts import make_user
from tests.support.console import HTML, PASSWORD, client_sign_in, form_value

TEXT = "Bão số 9 sắp đổ bộ. Người dân ở trong nhà, tránh xa bờ sông."


@pytest.fixture
def fleet(rt: Runtime, legacy_areas: None, vendors: dict[str, str]) -> Runtime:
    with rt.db.session() as s:
        for did, area, kind in (("LOA-1", "27694", "speaker"), ("LOA-2", "27694", "speaker"),
                                ("BANG-1", "27694", "led_board"), ("LOA-3", "27697", "speaker"),
                                ("LOA-9", "28099", "speaker")):
            upsert_device(s, rt.plugins, {"id": did, "vendor": vendors[kind], "kind": kind, "area_code": area,
                                          "address": did.lower(), "tags": []})
    return rt


def _emergencies(rt: Runtime) -> int:
    with rt.db.session() as s:
        return s.scalar(select(func.count()).select_from(Emergency)) or 0


def _signed_in(rt: Runtime, name: str, roles: list[str], areas: list[str]) -> tuple[Any, str]:
    make_user(rt, name, roles, areas, password=PASSWORD)
    client = create_app(rt).test_client()
    return client, client_sign_in(client, name)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_confirmation_spells_out_the_scope_and_firing_opens_the_progress(fleet: Runtime) -> None:
    client, csrf = _signed_in(fleet, "op-794", ["operator"], ["794"])
    form = client.get("/console/emergency", headers=HTML).get_data(as_text=True)
    assert "Phát khẩn cấp" in form and 'value="27694"' in form and 'value="28099"' not in form
    r = client.post("/console/emergency", headers=HTML,
                    data={"csrf_token": csrf, "step": "preview", "text": TEXT, "areas": ["27694", "27697"]})
    page = _text(r.get_data(as_text=True))
    assert r.status_code == 200 and "4 loa/bảng ở 2 xã" in page
    assert "cụm loa truyền thanh: 3 trong số 3 thiết bị đã chọn" in page
    assert "bảng tin điện tử: 1 trong số 1 thiết bị đã chọn" in page
    assert _emergencies(fleet) == 0, "the confirmation sends nothing"
    key = form_value(r.get_data(as_text=True), "idempotency_key")
    fire = {"csrf_token": csrf, "step": "fire", "text": TEXT, "areas": ["27694", "27697"], "idempotency_key": key}
    r = client.post("/console/emergency", headers=HTML, data=fire)
    assert r.status_code == 302 and re.match(r"/console/commands/[0-9a-f]{32}$", r.headers["Location"])
    again = client.post("/console/emergency", headers=HTML, data=fire)
    assert again.headers["Location"] == r.headers["Location"], "a resent confirmation fires once"
    assert _emergencies(fleet) == 1
    progress = _text(client.get(r.headers["Location"], headers=HTML).get_data(as_text=True))
    assert "phát bản tin · khẩn cấp" in progress and "LOA-3" in progress


def test_an_expiry_in_the_past_or_an_empty_text_is_refused_in_vietnamese(fleet: Runtime) -> None:
    client, csrf = _signed_in(fleet, "op-1", ["operator"], ["27694"])
    r = client.post("/console/emergency", headers=HTML,
                    data={"csrf_token": csrf, "text": TEXT, "areas": ["27694"], "expires": "2020-01-01T07:00"})
    assert r.status_code == 422 and "Thời điểm bắt đầu hoặc kết thúc không hợp lệ" in r.get_data(as_text=True)
    r = client.post("/console/emergency", headers=HTML, data={"csrf_token": csrf, "text": "  ", "areas": ["27694"]})
    assert r.status_code == 422 and "Hãy viết nội dung khẩn cấp" in r.get_data(as_text=True)
    r = client.post("/console/emergency", headers=HTML, data={"csrf_token": csrf, "text": TEXT})
    assert r.status_code == 422 and "Hãy chọn ít nhất một địa bàn" in r.get_data(as_text=True)
    r = client.post("/console/emergency", headers=HTML, data={"csrf_token": csrf, "text": TEXT, "areas": ["27694"],
                                                              "expires": "2099-13-45T99:00"})
    assert r.status_code == 422
    assert _emergencies(fleet) == 0


def test_an_emergency_beyond_the_operators_areas_is_refused_and_sends_nothing(fleet: Runtime) -> None:
    client, csrf = _signed_in(fleet, "op-2", ["operator"], ["27694"])
    for step in ("preview", "fire"):
        for area in ("27697", "794", "28099"):
            r = client.post("/console/emergency", headers=HTML,
                            data={"csrf_token": csrf, "step": step, "text": TEXT, "areas": [area]})
            assert r.status_code == 422, (step, area)
            assert "nằm ngoài địa bàn của bạn" in r.get_data(as_text=True), (step, area)
    assert _emergencies(fleet) == 0


def test_roles_that_may_not_fire_get_no_button_and_fire_nothing(fleet: Runtime) -> None:
    for role in ("viewer", "editor", "approver"):
        client, csrf = _signed_in(fleet, f"{role}-1", [role], ["27694"])
        assert client.get("/console/emergency", headers=HTML).status_code == 403
        assert "/console/emergency" not in client.get("/console/", headers=HTML).get_data(as_text=True)
        r = client.post("/console/emergency", headers=HTML,
                        data={"csrf_token": csrf, "step": "fire", "text": TEXT, "areas": ["27694"]})
        assert r.status_code == 403, role
    client, csrf = _signed_in(fleet, "op-3", ["operator"], ["27694"])
    r = client.post("/console/emergency", headers=HTML, data={"step": "fire", "text": TEXT, "areas": ["27694"]})
    assert r.status_code == 403, "a form without the session's CSRF token fires nothing"
    assert _emergencies(fleet) == 0


def test_an_emergency_is_stopped_from_its_progress_page_by_those_who_may(fleet: Runtime) -> None:
    client, csrf = _signed_in(fleet, "op-4", ["operator"], ["27694"])
    r = client.post("/console/emergency", headers=HTML,
                    data={"csrf_token": csrf, "step": "fire", "text": TEXT, "areas": ["27694"]})
    speakers = r.headers["Location"]
    page = client.get(speakers, headers=HTML).get_data(as_text=True)
    boards = re.search(r'id="emergency-other" href="([^"]+)"', page).group(1)
    assert "Bảng tin của lần phát khẩn cấp này" in page and 'id="stop-emergency"' in page
    assert "Loa của lần phát khẩn cấp này" in client.get(boards, headers=HTML).get_data(as_text=True)
    viewer, v_csrf = _signed_in(fleet, "xem-4", ["viewer"], ["27694"])
    assert 'id="stop-emergency"' not in viewer.get(speakers, headers=HTML).get_data(as_text=True)
    assert viewer.post(f"/console/emergency/{speakers[-32:]}/stop", headers=HTML,
                       data={"csrf_token": v_csrf}).status_code == 403
    far, f_csrf = _signed_in(fleet, "op-far", ["operator"], ["28099"])
    assert far.post(f"/console/emergency/{speakers[-32:]}/stop", headers=HTML,
                    data={"csrf_token": f_csrf}).status_code == 404, "an emergency of another district is not theirs"
    r = client.post(f"/console/emergency/{speakers[-32:]}/stop", headers=HTML, data={"csrf_token": csrf})
    assert r.status_code == 302 and r.headers["Location"] != speakers
    stop_page = _text(client.get(r.headers["Location"], headers=HTML).get_data(as_text=True))
    assert "dừng phát" in stop_page
    page = _text(client.get(speakers, headers=HTML).get_data(as_text=True))
    assert "op-4 đã dừng lúc" in page
    again = client.post(f"/console/emergency/{speakers[-32:]}/stop", headers=HTML, data={"csrf_token": csrf})
    assert again.status_code == 409 and "đã được dừng trước đó" in again.get_data(as_text=True)
