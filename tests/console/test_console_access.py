"""Who may do what through the console's pages (sessions only, the API's roles and areas), its
CSRF-protected forms, and one's own API tokens — through the Flask test client and the real
accounts authenticator."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from hub.api import create_app
from hub.fleet.registry import upsert_device
from hub.runtime import Runtime
from hub.store.models import ApiToken, Command
from tests.support.accounts import make_token, make_user
from tests.support.console import HTML, PASSWORD, client_sign_in, form_value

REFUSED_OUTSIDE = ("Lệnh bị từ chối: lựa chọn của bạn gồm thiết bị hoặc địa bàn nằm ngoài địa bàn bạn được giao. "
                   "Lệnh chưa được gửi.")


@pytest.fixture
def fleet(rt: Runtime, legacy_areas: None, vendors: dict[str, str]) -> Runtime:
    with rt.db.session() as s:
        for did, area in (("LOA-1", "27694"), ("LOA-2", "27697"), ("LOA-3", "28099")):
            upsert_device(s, rt.plugins, {"id": did, "vendor": vendors["speaker"], "kind": "speaker", "area_code": area,
                                          "address": did.lower(), "tags": []})
    return rt


def _commands(rt: Runtime) -> int:
    with rt.db.session() as s:
        return s.scalar(select(func.count()).select_from(Command)) or 0


def _signed_in(rt: Runtime, name: str, roles: list[str], areas: list[str]) -> tuple[Any, str]:
    make_user(rt, name, roles, areas, password=PASSWORD)
    client = create_app(rt).test_client()
    return client, client_sign_in(client, name)


def _volume(csrf: str, area: str) -> dict[str, Any]:
    return {"csrf_token": csrf, "verb": "set_volume", "p_level": "40", "areas": [area], "priority": "normal"}


def test_the_front_door_sends_a_browser_to_sign_in_and_a_program_gets_json(rt: Runtime, legacy_areas: None) -> None:
    client = create_app(rt).test_client()
    r = client.get("/", headers=HTML)
    assert r.status_code == 302 and r.headers["Location"].startswith("/console/login?next=")
    r = client.get("/console/devices", headers=HTML)
    assert r.status_code == 302 and "next=/console/devices" in r.headers["Location"]
    for path in ("/", "/console/", "/api/devices"):
        r = client.get(path)
        assert r.status_code == 401 and r.is_json and r.headers["WWW-Authenticate"].startswith("Bearer"), path


def test_signing_in_needs_the_forms_own_token_and_the_right_password(rt: Runtime, legacy_areas: None) -> None:
    make_user(rt, "op-1", ["operator"], ["27694"], password=PASSWORD)
    client = create_app(rt).test_client()
    forged = client.post("/console/login", headers=HTML, data={"name": "op-1", "password": PASSWORD})
    assert forged.status_code == 400 and "Biểu mẫu đăng nhập đã hết hạn" in forged.get_data(as_text=True)
    page = client.get("/console/login", headers=HTML).get_data(as_text=True)
    wrong = client.post("/console/login", headers=HTML, data={"login_token": form_value(page, "login_token"),
                                                              "name": "op-1", "password": "sai-mat-khau"})
    assert wrong.status_code == 401 and "Sai tên tài khoản hoặc mật khẩu." in wrong.get_data(as_text=True)
    csrf = client_sign_in(client, "op-1")
    assert client.get("/api/auth/me").get_json()["user"]["name"] == "op-1", "the API sees the same session"
    assert client.post("/console/logout", headers=HTML).status_code == 403, "signing out is a form with its token"
    r = client.post("/console/logout", headers=HTML, data={"csrf_token": csrf})
    assert r.status_code == 302 and client.get("/api/auth/me").status_code == 401


def test_an_operator_sends_within_their_areas_and_is_refused_beyond_in_vietnamese(fleet: Runtime) -> None:
    client, csrf = _signed_in(fleet, "op-27694", ["operator"], ["27694"])
    r = client.post("/console/commands/new", headers=HTML, data=_volume(csrf, "27694"))
    assert r.status_code == 302 and r.headers["Location"].startswith("/console/commands/")
    assert _commands(fleet) == 1
    for area in ("27697", "794", "80"):
        r = client.post("/console/commands/new", headers=HTML, data=_volume(csrf, area))
        assert r.status_code == 422 and REFUSED_OUTSIDE in r.get_data(as_text=True), area
    assert _commands(fleet) == 1, "a refusal sends nothing"
    r = client.post("/console/commands/new", headers=HTML, data={**_volume(csrf, "27694"), "p_level": "140"})
    assert r.status_code == 422 and "Mức phải là số nguyên từ 0 đến 100." in r.get_data(as_text=True)
    r = client.post("/console/commands/new", headers=HTML, data={"csrf_token": csrf, "verb": "stop"})
    assert "Hãy chọn ít nhất một địa bàn, nhóm hoặc thiết bị để gửi lệnh." in r.get_data(as_text=True)


def test_roles_that_send_no_command_get_no_form_and_send_nothing(fleet: Runtime) -> None:
    for role in ("viewer", "editor", "approver"):
        client, csrf = _signed_in(fleet, f"{role}-1", [role], ["27694"])
        page = client.get("/console/commands/new", headers=HTML)
        assert page.status_code == 403 and "cần vai trò" in page.get_data(as_text=True), role
        assert "Gửi lệnh" not in client.get("/console/", headers=HTML).get_data(as_text=True)
        r = client.post("/console/commands/new", headers=HTML, data=_volume(csrf, "27694"))
        assert r.status_code == 403, role
    assert _commands(fleet) == 0


def test_a_form_without_the_sessions_csrf_token_sends_nothing(fleet: Runtime) -> None:
    client, csrf = _signed_in(fleet, "op-2", ["operator"], ["27694"])
    r = client.post("/console/commands/new", headers=HTML, data={**_volume(csrf, "27694"), "csrf_token": "x" * 64})
    assert r.status_code == 403 and "Biểu mẫu đã hết hạn" in r.get_data(as_text=True)
    r = client.post("/console/commands/new", headers=HTML, data={k: v for k, v in _volume(csrf, "27694").items()
                                                                  if k != "csrf_token"})
    assert r.status_code == 403 and _commands(fleet) == 0


def test_an_api_token_opens_no_console_page(fleet: Runtime) -> None:
    make_user(fleet, "op-3", ["operator", "administrator"], ["80"], password=PASSWORD)
    _, raw = make_token(fleet, "op-3")
    client = create_app(fleet).test_client()
    auth = {"Authorization": f"Bearer {raw}"}
    assert client.get("/console/", headers=auth).status_code == 403
    r = client.post("/console/commands/new", headers=auth,
                    data={"verb": "stop", "areas": ["27694"], "priority": "normal"})
    assert r.status_code == 403 and r.is_json and _commands(fleet) == 0


def test_my_tokens_show_the_secret_once_work_on_the_api_and_revoke(fleet: Runtime) -> None:
    client, csrf = _signed_in(fleet, "op-4", ["operator"], ["27694"])
    r = client.post("/console/tokens", headers=HTML, data={"csrf_token": csrf, "name": "bảng tin xã",
                                                           "read_only": "on"})
    page = r.get_data(as_text=True)
    assert r.status_code == 201 and "sẽ không được hiển thị lại" in page
    secret = page.split('id="token-secret">', 1)[1].split("<", 1)[0]
    assert secret not in client.get("/console/tokens", headers=HTML).get_data(as_text=True), "shown once"
    api = create_app(fleet).test_client()
    me = api.get("/api/auth/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.get_json()["read_only"] is True
    with fleet.db.session() as s:
        token_id = s.scalar(select(ApiToken.id).where(ApiToken.name == "bảng tin xã"))
    r = client.post(f"/console/tokens/{token_id}/revoke", headers=HTML, data={"csrf_token": csrf})
    assert r.status_code == 302
    assert api.get("/api/auth/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_nobody_revokes_anothers_token_nor_widens_their_own(fleet: Runtime) -> None:
    make_user(fleet, "other", ["operator"], ["27694"], password=PASSWORD)
    theirs, raw = make_token(fleet, "other")
    client, csrf = _signed_in(fleet, "op-5", ["administrator"], ["27694"])
    r = client.post(f"/console/tokens/{theirs}/revoke", headers=HTML, data={"csrf_token": csrf})
    assert r.status_code == 404
    assert create_app(fleet).test_client().get("/api/auth/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    r = client.post("/console/tokens", headers=HTML, data={"csrf_token": csrf, "name": "rộng", "areas": ["28099"]})
    assert r.status_code == 422 and "chỉ được dùng trong địa bàn của chính bạn" in r.get_data(as_text=True)
    r = client.post("/console/tokens", headers=HTML, data={"csrf_token": csrf, "name": ""})
    assert r.status_code == 422 and "Hãy đặt tên cho mã truy cập" in r.get_data(as_text=True)
