"""The password policy, wherever a password is set: creating an account, an administrator's
reset, one's own change (API) and the command line. A refused password answers 422 naming the
field (`password`, or `new_password` for one's own change) and the rule it breaks."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from hub.access import accounts, passwords
from hub.api import create_app
from hub.access.actors import LOCAL_ADMIN
from hub.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PW = "Quan-tri-vien-9-hoa-sen"
OPERATOR_PW = "Loa-phuong-7-xanh-ngoc"
WEAK = [  # (password, rule)
    ("aaaaaaaaaaaa", "repeated"),
    ("short-pw-1", "min_length"),
    ("password1234", "common"),
    ("P@ssw0rd2024!", "common"),
    ("qwertyuiopasdf", "common"),
    ("abcdefghijklmn", "pattern"),
    ("123412341234", "pattern"),
    ("op-policy-1-2024", "account_words"),
]


@pytest.fixture
def prt(rt: Runtime, legacy_areas: None) -> Iterator[Runtime]:
    with rt.db.session() as s:
        accounts.create_user(s, LOCAL_ADMIN, "adm-p1", ["administrator"], ["80"], password=ADMIN_PW)
        accounts.create_user(s, LOCAL_ADMIN, "op-policy-1", ["operator"], ["27694"], password=OPERATOR_PW,
                             full_name="Trần Thị Bình")
    yield rt
    keys = list(rt.redis.scan_iter(f"{rt.settings.queue}:login:*"))
    if keys:
        rt.redis.delete(*keys)


def signed_in(rt: Runtime, name: str, password: str) -> tuple[FlaskClient, dict[str, str]]:
    c = create_app(rt).test_client()
    r = c.post("/api/auth/login", json={"name": name, "password": password})
    assert r.status_code == 200, r.get_json()
    return c, {"X-CSRF-Token": r.get_json()["csrf_token"]}


def refused(r: Any, field: str, rule: str) -> None:
    body = r.get_json()
    assert r.status_code == 422, body
    assert list(body["errors"]["json"]) == [field], body
    assert f"(rule: {rule})" in body["errors"]["json"][field][0] and f"rule: {rule}" in body["message"], body


@pytest.mark.parametrize("password,rule", WEAK)
def test_a_new_account_with_a_weak_password_is_refused(prt: Runtime, password: str, rule: str) -> None:
    admin, h = signed_in(prt, "adm-p1", ADMIN_PW)
    r = admin.post("/api/users", json={"name": "op-policy-2", "roles": ["viewer"], "areas": ["27694"],
                                       "password": password.replace("op-policy-1", "op-policy-2")}, headers=h)
    refused(r, "password", rule)
    assert admin.get("/api/users/op-policy-2").status_code == 404


def test_an_administrators_reset_follows_the_policy(prt: Runtime) -> None:
    admin, h = signed_in(prt, "adm-p1", ADMIN_PW)
    for password, rule in WEAK:
        refused(admin.post("/api/users/op-policy-1/password", json={"password": password}, headers=h),
                "password", rule)
    refused(admin.post("/api/users/op-policy-1/password", json={"password": OPERATOR_PW}, headers=h),
            "password", "current")
    refused(admin.post("/api/users/op-policy-1/password", json={"password": "binhtran-1988"}, headers=h),
            "password", "account_words")  # built on the full name
    ok = admin.post("/api/users/op-policy-1/password", json={"password": "Cot-den-bien-song-34"}, headers=h)
    assert ok.status_code == 200, ok.get_json()
    signed_in(prt, "op-policy-1", "Cot-den-bien-song-34")


def test_my_own_change_names_new_password_and_refuses_the_current_one(prt: Runtime) -> None:
    me, h = signed_in(prt, "op-policy-1", OPERATOR_PW)
    change = lambda new: me.post("/api/auth/password",  # noqa: E731
                                 json={"current_password": OPERATOR_PW, "new_password": new}, headers=h)
    refused(change(OPERATOR_PW), "new_password", "current")
    refused(change("aaaaaaaaaaaa"), "new_password", "repeated")
    refused(change("password1234"), "new_password", "common")
    assert change("Mua-xuan-tren-song-Hong").status_code == 204
    signed_in(prt, "op-policy-1", "Mua-xuan-tren-song-Hong")


def test_the_cli_refuses_weak_passwords_in_one_line(prt: Runtime, config_file: Path) -> None:
    def hub(*args: str, stdin: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True, timeout=120,
                              input=stdin, env={**os.environ, "HUB_CONFIG": str(config_file)}, cwd=ROOT)

    r = hub("users", "add", "op-policy-3", "--role", "viewer", "--area", "80", "--password-stdin",
            stdin="aaaaaaaaaaaa\n")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert "password:" in r.stderr and "(rule: repeated)" in r.stderr
    r = hub("users", "reset-password", "op-policy-1", "--password-stdin", stdin=OPERATOR_PW + "\n")
    assert r.returncode != 0 and "password:" in r.stderr and "(rule: current)" in r.stderr
    r = hub("users", "add", "op-policy-3", "--role", "viewer", "--area", "80", "--password-stdin",
            stdin="Nha-van-hoa-thon-Dong-5\n")
    assert r.returncode == 0, r.stderr


def test_generated_passwords_always_pass_the_policy() -> None:
    for _ in range(200):
        passwords.check_new_password(passwords.generate_password(), "someone")


def test_strong_passphrases_pass() -> None:
    for pw in ("correct horse battery staple", OPERATOR_PW, "Mua-xuan-tren-song-Hong", "tram phat thanh xa 2026"):
        passwords.check_new_password(pw, "op-x")
