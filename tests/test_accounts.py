"""Accounts through the API's default authenticator: console sign-in with its CSRF token, API
tokens (revoked, read-only, narrowed, hashed at rest), administrators within their areas, the
session key, and the `hub users` / `hub tokens` commands."""
from __future__ import annotations

import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.access import accounts, passwords
from hub.api import create_app
from hub.access.actors import LOCAL_ADMIN
from hub.config import ConfigError, load_settings
from hub.store.models import ApiToken, AuditEntry, LoginSession
from hub.runtime import Runtime
from hub.access.secret_key import session_secret
from tests.support.accounts import make_token, make_user
from tests.support.api import assert_error
from tests.support.cli import hub, one_line_error
from tests.support.services import ROOT

SET_VOLUME = {"verb": "set_volume", "params": {"level": 30}, "target": {"areas": ["27694"]}}


def sign_in(client: FlaskClient, name: str, password: str) -> str:
    r = client.post("/api/auth/login", json={"name": name, "password": password})
    assert r.status_code == 200, r.get_json()
    return r.get_json()["csrf_token"]


def actions(rt: Runtime) -> list[tuple[str, str, str | None]]:
    with rt.db.session() as s:
        return [(e.action, e.actor, e.object_id) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))]


@pytest.fixture
def app_rt(rt: Runtime, legacy_areas: None, vendors: dict[str, str]) -> Runtime:  # noqa: F811
    from hub.fleet.registry import upsert_device

    with rt.db.session() as s:
        for did, area in (("spk-1", "27694"), ("spk-2", "27697"), ("spk-3", "28099")):
            upsert_device(s, rt.plugins, {"id": did, "vendor": vendors["speaker"], "kind": "speaker",
                                          "area_code": area, "address": did, "tags": []})
    return rt


# -- console sign-in ------------------------------------------------------------------------------
def test_sign_in_cookie_csrf_and_sign_out(app_rt: Runtime) -> None:
    rt = app_rt
    pw = make_user(rt, "op-p1", ["operator"], ["27694"])
    c = create_app(rt).test_client()
    assert_error(c.get("/api/devices"), 401, contains="sign in")

    assert_error(c.post("/api/auth/login", json={"name": "op-p1", "password": "not the password"}), 401,
                 "json", "password", "wrong name or password")
    unknown = c.post("/api/auth/login", json={"name": "nobody", "password": "whatever-it-is"})
    assert unknown.get_json()["message"] == "wrong name or password"  # the same answer: no account probing

    r = c.post("/api/auth/login", json={"name": "op-p1", "password": pw})
    assert r.status_code == 200
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    csrf = r.get_json()["csrf_token"]
    assert r.get_json()["user"]["roles"] == ["operator"] and r.get_json()["areas"] == ["27694"]
    assert pw not in r.get_data(as_text=True)

    assert [d["id"] for d in c.get("/api/devices").get_json()] == ["spk-1"]  # reads need no CSRF token
    body = assert_error(c.post("/api/commands", json=SET_VOLUME), 403, contains="X-CSRF-Token")
    assert assert_error(c.post("/api/commands", json=SET_VOLUME, headers={"X-CSRF-Token": "0" * 64}), 403)
    r = c.post("/api/commands", json=SET_VOLUME, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201 and r.get_json()["issuer"] == "op-p1", r.get_json()
    assert c.get("/api/auth/me").get_json()["csrf_token"] == csrf
    assert body["code"] == 403

    # a copy of the cookie stops working once its owner signs out
    thief = create_app(rt).test_client()
    thief.set_cookie("hub_session", cookie.split(";")[0].split("=", 1)[1])
    assert thief.get("/api/devices").status_code == 200
    assert_error(c.post("/api/auth/logout"), 403, contains="X-CSRF-Token")
    assert c.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert_error(thief.get("/api/devices"), 401, contains="session has ended")
    assert_error(c.get("/api/devices"), 401)

    log = actions(rt)
    assert ("login.failure", "anonymous", "op-p1") in log and ("login.failure", "anonymous", "nobody") in log
    assert ("login.success", "op-p1", "op-p1") in log and ("logout", "op-p1", "op-p1") in log
    with rt.db.session() as s:
        failures = s.scalars(select(AuditEntry).where(AuditEntry.action == "login.failure"))
        reasons = [e.detail["reason"] for e in failures]
    assert reasons == ["wrong password", "unknown user"]


def test_secure_cookie_when_configured(app_rt: Runtime) -> None:
    app_rt.settings.cookie_secure = True
    pw = make_user(app_rt, "viewer-1", ["viewer"], ["80"])
    r = create_app(app_rt).test_client().post("/api/auth/login", json={"name": "viewer-1", "password": pw})
    assert "Secure" in r.headers["Set-Cookie"]


def test_disabling_an_account_ends_its_sessions_and_tokens(app_rt: Runtime) -> None:
    rt = app_rt
    pw = make_user(rt, "op-x", ["operator"], ["27694"])
    _, raw = make_token(rt, "op-x")
    c = create_app(rt).test_client()
    sign_in(c, "op-x", pw)
    with rt.db.session() as s:
        accounts.update_user(s, LOCAL_ADMIN, accounts.get_user(s, "op-x"), disabled=True)
    assert_error(c.get("/api/devices"), 401)
    assert_error(c.get("/api/devices", headers={"Authorization": f"Bearer {raw}"}), 401, contains="disabled")
    assert_error(c.post("/api/auth/login", json={"name": "op-x", "password": pw}), 401)


def test_changing_my_password_ends_my_other_sessions(app_rt: Runtime) -> None:
    rt = app_rt
    pw = make_user(rt, "ed-1", ["editor"], ["27694"])
    laptop, phone = create_app(rt).test_client(), create_app(rt).test_client()
    csrf = sign_in(laptop, "ed-1", pw)
    sign_in(phone, "ed-1", pw)
    new = "a brand new passphrase"
    assert_error(laptop.post("/api/auth/password", json={"current_password": "wrong-wrong-wrong", "new_password": new},
                             headers={"X-CSRF-Token": csrf}), 422, "json", "current_password")
    assert_error(laptop.post("/api/auth/password", json={"current_password": pw, "new_password": "short"},
                             headers={"X-CSRF-Token": csrf}), 422, "json", "new_password", "at least 12")
    r = laptop.post("/api/auth/password", json={"current_password": pw, "new_password": new},
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204, r.get_json()
    assert laptop.get("/api/auth/me").status_code == 200
    assert_error(phone.get("/api/auth/me"), 401)
    assert_error(phone.post("/api/auth/login", json={"name": "ed-1", "password": pw}), 401)
    sign_in(phone, "ed-1", new)


# -- API tokens -----------------------------------------------------------------------------------
def test_tokens_revoked_read_only_narrowed_and_hashed_at_rest(app_rt: Runtime) -> None:
    rt = app_rt
    admin_pw = make_user(rt, "district-admin", ["administrator"], ["794"])
    c = create_app(rt).test_client()
    csrf = sign_in(c, "district-admin", admin_pw)
    h = {"X-CSRF-Token": csrf}

    made = c.post("/api/tokens", json={"user": "district-admin", "name": "ci"}, headers=h).get_json()
    narrow = c.post("/api/tokens", json={"user": "district-admin", "name": "p1-only", "areas": ["27694"]},
                    headers=h).get_json()
    reader = c.post("/api/tokens", json={"user": "district-admin", "name": "dashboard", "read_only": True},
                    headers=h).get_json()
    assert_error(c.post("/api/tokens", json={"user": "district-admin", "name": "x", "areas": ["28099"]}, headers=h),
                 403, "json", "areas", "outside the areas of district-admin")
    raws = [made["token"], narrow["token"], reader["token"]]
    assert made["prefix"] == made["token"][:13] and made["token"].startswith("hubt_")

    def bearer(raw: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {raw}"}

    m = create_app(rt).test_client()  # a machine: no cookie, no CSRF token needed
    assert [d["id"] for d in m.get("/api/devices", headers=bearer(made["token"])).get_json()] == ["spk-1", "spk-2"]
    assert m.post("/api/commands", json={**SET_VOLUME, "target": {"areas": ["794"]}},
                  headers=bearer(made["token"])).status_code == 201
    # narrowed to one commune: the district is out of reach, the commune is not
    assert [d["id"] for d in m.get("/api/devices", headers=bearer(narrow["token"])).get_json()] == ["spk-1"]
    assert_error(m.post("/api/commands", json={**SET_VOLUME, "target": {"areas": ["794"]}},
                        headers=bearer(narrow["token"])), 403, "json", "target", "outside the areas")
    assert m.post("/api/commands", json=SET_VOLUME, headers=bearer(narrow["token"])).status_code == 201
    assert m.get("/api/auth/me", headers=bearer(narrow["token"])).get_json()["areas"] == ["27694"]
    # read-only: reads yes, any write no
    assert m.get("/api/commands", headers=bearer(reader["token"])).status_code == 200
    for method, url, body in (("POST", "/api/commands", SET_VOLUME), ("PATCH", "/api/devices/spk-1",
                                                                      {"admin_state": "disabled"}),
                              ("POST", "/api/contents", {"title": "T", "kind": "tts_text", "body": "x"})):
        assert_error(m.open(url, method=method, json=body, headers=bearer(reader["token"])), 403, contains="read-only")
    # malformed and unknown
    assert_error(m.get("/api/devices", headers={"Authorization": "Basic YWRtaW46YWRtaW4="}), 401, contains="Bearer")
    assert_error(m.get("/api/devices", headers=bearer("hubt_" + "x" * 43)), 401, contains="invalid or revoked")
    # revoked: refused at once
    assert c.delete(f"/api/tokens/{made['id']}", headers=h).status_code == 204
    assert_error(m.get("/api/devices", headers=bearer(made["token"])), 401, contains="invalid or revoked")
    listed = {t["id"]: t for t in c.get("/api/tokens").get_json()}
    assert listed[made["id"]]["revoked_by"] == "district-admin" and "token" not in listed[made["id"]]
    assert listed[narrow["id"]]["last_used_at"] is not None and listed[reader["id"]]["areas"] is None

    # hashed at rest: no token and no password appears anywhere in the database
    db_file = rt.settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(db_file) as conn:
        dump = "\n".join(conn.iterdump())
    assert "api_tokens" in dump and narrow["prefix"] in dump
    for secret in raws + [admin_pw]:
        assert secret not in dump
        assert secret[len(narrow["prefix"]):] not in dump
    with rt.db.session() as s:
        stored = s.scalars(select(ApiToken.secret_hash)).all()
    assert accounts.sha256_hex(made["token"]) in stored


def test_a_users_narrowing_narrows_its_tokens(app_rt: Runtime) -> None:
    rt = app_rt
    make_user(rt, "robot", ["operator"], ["794"], login=False)
    _, raw = make_token(rt, "robot", areas=["794"])
    m = create_app(rt).test_client()
    assert len(m.get("/api/devices", headers={"Authorization": f"Bearer {raw}"}).get_json()) == 2
    with rt.db.session() as s:
        accounts.update_user(s, LOCAL_ADMIN, accounts.get_user(s, "robot"), areas=["27697"])
    assert [d["id"] for d in m.get("/api/devices", headers={"Authorization": f"Bearer {raw}"}).get_json()] == ["spk-2"]
    assert_error(m.post("/api/auth/login", json={"name": "robot", "password": "x" * 20}), 401)  # tokens only


# -- administrators within their areas --------------------------------------------------------------
def test_administrators_manage_accounts_only_within_their_areas(app_rt: Runtime) -> None:
    rt = app_rt
    make_user(rt, "province-admin", ["administrator"], ["80"], login=False)
    make_user(rt, "other-commune-op", ["operator"], ["28099"], login=False)
    make_user(rt, "p1-viewer", ["viewer"], ["27694"], login=False)
    pw = make_user(rt, "district-admin", ["administrator"], ["794"])
    c = create_app(rt).test_client()
    h = {"X-CSRF-Token": sign_in(c, "district-admin", pw)}

    assert [u["name"] for u in c.get("/api/users").get_json()] == ["district-admin", "p1-viewer"]
    assert [u["name"] for u in c.get("/api/users?role=viewer").get_json()] == ["p1-viewer"]
    assert_error(c.get("/api/users/province-admin"), 404)
    assert_error(c.patch("/api/users/other-commune-op", json={"disabled": True}, headers=h), 404)
    assert_error(c.post("/api/users", json={"name": "x-1", "roles": ["operator"], "areas": ["807"]}, headers=h),
                 403, "json", "areas", "outside the areas of district-admin")
    assert_error(c.patch("/api/users/p1-viewer", json={"areas": ["80"]}, headers=h), 403, "json", "areas")
    assert_error(c.post("/api/users", json={"name": "Bad Name", "roles": ["viewer"], "areas": ["794"]}, headers=h),
                 422, "json", "name")
    assert_error(c.post("/api/users", json={"name": "x-2", "roles": ["king"], "areas": ["794"]}, headers=h),
                 422, "json", "roles")
    assert_error(c.post("/api/users", json={"name": "x-3", "roles": ["viewer"], "areas": ["99999"]}, headers=h),
                 422, "json", "areas", "99999")
    assert_error(c.post("/api/users", json={"name": "p1-viewer", "roles": ["viewer"], "areas": ["794"]}, headers=h),
                 409, "json", "name")
    assert_error(c.post("/api/users", json={"name": "x-4", "roles": ["viewer"], "areas": ["794"],
                                            "password": "x-4"}, headers=h), 422, "json", "password")

    r = c.post("/api/users", json={"name": "p2-op", "roles": ["operator"], "areas": ["27697"]}, headers=h)
    assert r.status_code == 201 and len(r.get_json()["password"]) >= 16
    generated = r.get_json()["password"]
    assert sign_in(create_app(rt).test_client(), "p2-op", generated)
    reset = c.post("/api/users/p2-op/password", json={}, headers=h).get_json()["password"]
    assert reset and reset != generated
    assert c.patch("/api/users/p1-viewer", json={"roles": ["viewer", "approver"]},
                   headers=h).get_json()["roles"] == ["approver", "viewer"]
    # no self-lockout
    assert_error(c.patch("/api/users/district-admin", json={"roles": ["viewer"]}, headers=h), 409, "json", "roles")
    assert_error(c.patch("/api/users/district-admin", json={"disabled": True}, headers=h), 409)
    assert_error(c.delete("/api/users/district-admin", headers=h), 409)
    assert c.delete("/api/users/p2-op", headers=h).status_code == 204
    assert_error(c.get("/api/users/p2-op"), 404)
    # non-administrators may not even list
    vpw = make_user(rt, "p1-viewer2", ["viewer"], ["27694"])
    v = create_app(rt).test_client()
    sign_in(v, "p1-viewer2", vpw)
    assert_error(v.get("/api/users"), 403, contains="needs administrator")
    assert_error(v.get("/api/tokens"), 403)


# -- the session key and password hashing -----------------------------------------------------------
def test_session_key_is_generated_once_with_mode_0600(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings({"HUB_STATE_DIR": str(tmp_path / "state")})
    key = session_secret(settings)
    path = tmp_path / "state" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(key) >= 48
    assert "generated one into" in caplog.text
    assert session_secret(settings) == key  # every later process reads the same one
    assert session_secret(load_settings({"HUB_SECRET_KEY": "k" * 40, "HUB_STATE_DIR": str(tmp_path)})) == "k" * 40
    with pytest.raises(ConfigError, match="at least 32"):
        load_settings({"HUB_SECRET_KEY": "short"})
    cfg = tmp_path / "hub.yaml"
    cfg.write_text("secret_key: ${HUB_TEST_SESSION_KEY}\n")
    assert load_settings({"HUB_CONFIG": str(cfg), "HUB_TEST_SESSION_KEY": "s" * 40}).secret_key == "s" * 40
    assert "s" * 40 not in repr(load_settings({"HUB_CONFIG": str(cfg), "HUB_TEST_SESSION_KEY": "s" * 40}))


def test_password_hashes_are_scrypt_self_describing_and_upgradable() -> None:
    stored = passwords.hash_password("correct horse battery")
    algo, params, salt, digest = stored.split("$")
    assert algo == "scrypt" and params == "n=16384,r=8,p=1" and len(salt) >= 21 and len(digest) >= 42
    assert passwords.verify_password("correct horse battery", stored)
    assert not passwords.verify_password("correct horse battery!", stored)
    assert passwords.hash_password("correct horse battery") != stored  # salted
    weaker = stored.replace("n=16384", "n=1024")
    assert passwords.needs_rehash(weaker) and not passwords.needs_rehash(stored)
    assert not passwords.verify_password("x", "md5$whatever") and not passwords.verify_password("x", None)


# -- the command line ---------------------------------------------------------------------------------
@pytest.fixture
def cli_ready(config_file: Path) -> Path:
    assert hub(config_file, "init-db").returncode == 0
    assert hub(config_file, "import", "areas", str(ROOT / "tests/data/legacy-three-level.yaml")).returncode == 0
    return config_file


def test_cli_creates_the_first_administrator_and_tokens(cli_ready: Path, settings: Any) -> None:
    r = hub(cli_ready, "users", "create-admin", "tn-admin", "--area", "80")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if "shown once" in ln]
    assert len(lines) == 1
    password = lines[0].rsplit(": ", 1)[1]
    assert r.stdout.count(password) == 1 and len(password) >= 20

    r = hub(cli_ready, "users", "add", "op-27694", "--role", "operator", "--area", "27694", "--password-stdin",
            input_text="operator passphrase 1\n")
    assert r.returncode == 0 and "shown once" not in r.stdout, r.stderr
    assert "already exists" in one_line_error(hub(cli_ready, "users", "create-admin", "tn-admin", "--area", "80"))
    assert "99999" in one_line_error(hub(cli_ready, "users", "add", "x1", "--role", "viewer", "--area", "99999"))
    assert "at least 12" in one_line_error(hub(cli_ready, "users", "add", "x2", "--role", "viewer", "--area", "80",
                                               "--password-stdin", input_text="short\n"))
    listed = hub(cli_ready, "users", "list").stdout
    assert "tn-admin" in listed and "op-27694" in listed and password not in listed

    r = hub(cli_ready, "tokens", "create", "op-27694", "--token-name", "ci", "--read-only")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip().splitlines()[-1].rsplit(": ", 1)[1]
    assert token.startswith("hubt_") and r.stdout.count(token) == 1
    token_id = r.stdout.split()[1]
    assert "read-only" in r.stdout

    rt = Runtime(settings)
    try:
        c = create_app(rt).test_client()
        sign_in(c, "tn-admin", password)
        sign_in(c, "op-27694", "operator passphrase 1")
        m = create_app(rt).test_client()
        assert m.get("/api/devices", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert hub(cli_ready, "tokens", "revoke", token_id).returncode == 0
        assert m.get("/api/devices", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        assert "already revoked" in one_line_error(hub(cli_ready, "tokens", "revoke", token_id))
        r = hub(cli_ready, "users", "reset-password", "op-27694")
        new = r.stdout.strip().splitlines()[-1].rsplit(": ", 1)[1]
        assert_error(c.post("/api/auth/login", json={"name": "op-27694", "password": "operator passphrase 1"}), 401)
        sign_in(c, "op-27694", new)
        with rt.db.session() as s:
            who = {(e.action, e.actor.split(":")[0]) for e in s.scalars(select(AuditEntry))}
            assert s.scalar(select(LoginSession.id).limit(1)) is not None
        assert {("user.create", "cli"), ("token.create", "cli"), ("token.revoke", "cli"), ("user.password", "cli"),
                ("areas.import", "cli")} <= who
    finally:
        rt.close()


def test_the_demo_makes_its_accounts_with_generated_passwords(app_rt: Runtime) -> None:
    from hub.devkit.demo import PROVINCE, demo_users
    from hub.devkit.demo_feed import alert_areas
    from hub.fleet.areas import import_areas, official_rows

    rt = app_rt
    with rt.db.session() as s:
        import_areas(s, official_rows([PROVINCE]))
    printed: list[str] = []
    cast, logins = demo_users(rt, printed.append)
    text = "\n".join(printed)
    assert set(logins) == {"demo-admin", "demo-operator", "demo-editor", "demo-approver"}
    assert len(set(logins.values())) == 4 and all(text.count(pw) == 1 for pw in logins.values())
    assert (cast.admin.name, cast.approver.roles, cast.editor.roles) == ("demo-admin", {"approver"}, {"editor"})
    c = create_app(rt).test_client()  # the API the demo serves: accounts, not the local administrator
    assert_error(c.get("/api/devices"), 401)
    sign_in(c, "demo-operator", logins["demo-operator"])
    me = c.get("/api/auth/me").get_json()
    # the operator's commune is one the demo's storm warning names: they see the emergency in it
    assert me["user"]["roles"] == ["operator"] and me["areas"] == [alert_areas()[0]]
    admin = create_app(rt).test_client()
    sign_in(admin, "demo-admin", logins["demo-admin"])
    assert admin.get("/api/auth/me").get_json()["areas"] == [PROVINCE]
