"""Sign-in throttling: the 200-guesses attack ends in 429s with Retry-After, the right password
does not sign in while the account is locked, an administrator lifts the lock (API and CLI,
audited), throttled attempts never run the password hash, and failures beyond a number per
period are counted into a summary instead of flooding the audit log. Against the real Redis, with
this test's own key prefix (its queue name)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select

from hub.access import accounts, passwords
from hub.api import create_app
from hub.access.actors import LOCAL_ADMIN
from hub.config import ConfigError, load_settings
from hub.access.login_throttle import LoginThrottle
from hub.store.models import AuditEntry
from hub.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_PW = "Loa-phuong-7-xanh-ngoc"
ADMIN_PW = "Quan-tri-vien-9-hoa-sen"


@pytest.fixture
def srt(rt: Runtime, legacy_areas: None) -> Iterator[Runtime]:
    with rt.db.session() as s:
        accounts.create_user(s, LOCAL_ADMIN, "op-t1", ["operator"], ["27694"], password=OPERATOR_PW)
        accounts.create_user(s, LOCAL_ADMIN, "adm-t1", ["administrator"], ["80"], password=ADMIN_PW)
    yield rt
    keys = list(rt.redis.scan_iter(f"{rt.settings.queue}:login:*"))
    if keys:
        rt.redis.delete(*keys)


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the password hashes computed (the real scrypt still runs)."""
    calls: list[int] = []
    real = passwords._scrypt

    def counting(*args: Any, **kwargs: Any) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(passwords, "_scrypt", counting)
    return calls


def login(c: FlaskClient, name: str, password: str, addr: str = "127.0.0.1") -> Any:
    return c.post("/api/auth/login", json={"name": name, "password": password}, environ_base={"REMOTE_ADDR": addr})


def audit_rows(rt: Runtime, action: str) -> list[AuditEntry]:
    with rt.db.session() as s:
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)))
        s.expunge_all()
        return rows


def test_200_guesses_end_in_429_and_the_lock_holds_until_an_admin_lifts_it(srt: Runtime, hashes: list[int]) -> None:
    limit = srt.settings.login_max_failures
    c = create_app(srt).test_client()
    answers = [login(c, "op-t1", f"guess-number-{i:04d}") for i in range(200)]
    codes = [r.status_code for r in answers]
    assert codes[:limit] == [401] * limit and codes[limit:] == [429] * (200 - limit), codes
    for r in answers[limit:]:
        assert 0 < int(r.headers["Retry-After"]) <= srt.settings.login_lockout_s
        assert "locked" in r.get_json()["message"] and "name" in r.get_json()["errors"]["json"]
    assert len(hashes) == limit  # the 190 refused guesses hashed nothing

    # the right password during the lock does not sign in
    right = login(c, "op-t1", OPERATOR_PW)
    assert right.status_code == 429 and "Retry-After" in right.headers
    assert "Set-Cookie" not in right.headers and c.get("/api/devices").status_code == 401
    assert [e.object_id for e in audit_rows(srt, "user.lockout")] == ["op-t1"]

    admin = create_app(srt).test_client()
    assert login(admin, "adm-t1", ADMIN_PW).status_code == 200
    csrf = admin.get("/api/auth/me").get_json()["csrf_token"]
    state = admin.get("/api/users/op-t1/lockout").get_json()
    assert state["locked"] is True and state["failures"] == limit and state["retry_after"] > 0
    lifted = admin.delete("/api/users/op-t1/lockout", headers={"X-CSRF-Token": csrf})
    assert lifted.status_code == 200 and lifted.get_json()["locked"] is True
    assert admin.get("/api/users/op-t1/lockout").get_json() == {"locked": False, "retry_after": None, "failures": 0}
    unlock = audit_rows(srt, "user.unlock")
    assert [(e.actor, e.object_id, e.detail["was_locked"]) for e in unlock] == [("adm-t1", "op-t1", True)]

    assert login(c, "op-t1", OPERATOR_PW).status_code == 200
    # not an administrator: may not lift locks
    assert c.delete("/api/users/op-t1/lockout", headers={"X-CSRF-Token": c.get("/api/auth/me").get_json()
                    ["csrf_token"]}).status_code == 403


def test_a_success_starts_the_count_again(srt: Runtime) -> None:
    c = create_app(srt).test_client()
    for _ in range(3):
        for i in range(srt.settings.login_max_failures - 1):
            assert login(c, "op-t1", f"wrong-{i}").status_code == 401
        assert login(c, "op-t1", OPERATOR_PW).status_code == 200


def test_one_address_guessing_many_names_is_refused_and_others_are_not(srt: Runtime, hashes: list[int]) -> None:
    srt.settings.login_address_max_failures = 5
    c = create_app(srt).test_client()
    codes = [login(c, f"name-{i}", "some-guess-here", addr="203.0.113.9").status_code for i in range(12)]
    assert codes == [401] * 5 + [429] * 7
    r = login(c, "op-t1", OPERATOR_PW, addr="203.0.113.9")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) <= srt.settings.login_window_s
    assert len(hashes) == 5
    assert login(c, "op-t1", OPERATOR_PW, addr="198.51.100.4").status_code == 200  # another address


def test_concurrent_guesses_cannot_slip_under_the_limit(srt: Runtime, hashes: list[int]) -> None:
    """16 threads at once (the probe's flood): never more password checks than the limit."""
    app = create_app(srt)
    codes: list[int] = []
    lock = threading.Lock()

    def guess(t: int) -> None:
        c = app.test_client()
        for i in range(5):
            code = login(c, "op-t1", f"thread-{t}-guess-{i}").status_code
            with lock:
                codes.append(code)

    threads = [threading.Thread(target=guess, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(codes) == 80 and set(codes) <= {401, 429}
    assert codes.count(401) <= srt.settings.login_max_failures and len(hashes) <= srt.settings.login_max_failures
    assert LoginThrottle(srt.redis, srt.settings).lockout("op-t1")["locked"]


def test_failures_beyond_the_threshold_are_counted_not_audited_one_by_one(srt: Runtime) -> None:
    srt.settings.login_audit_failures = 3
    srt.settings.login_audit_period_s = 3600
    srt.settings.login_address_max_failures = 1000
    c = create_app(srt).test_client()
    start = time.time()
    for i in range(25):  # a spray over names: none reaches its lock
        assert login(c, f"spray-{i % 5}", f"guess-{i}-spray").status_code == 401
    for _ in range(15):  # op-t1 locked after 10, then 5 refused
        login(c, "op-t1", "wrong-password-again")
    periods = int(time.time() // 3600) - int(start // 3600) + 1
    singles = audit_rows(srt, "login.failure")
    assert len(singles) <= 3 * periods

    throttle = LoginThrottle(srt.redis, srt.settings)
    assert throttle.flush_summaries(srt.db.session, now=time.time() + 3600) == periods
    assert throttle.flush_summaries(srt.db.session, now=time.time() + 3600) == 0  # written once
    summaries = audit_rows(srt, "login.failure.summary")
    assert len(summaries) == periods
    failures = len(singles) + sum(e.detail["failures"] for e in summaries)
    assert failures == 25 + srt.settings.login_max_failures
    assert sum(e.detail["refused"] for e in summaries) == 15 - srt.settings.login_max_failures
    assert sum(e.detail["accounts"].get("spray-0", 0) for e in summaries) >= 5 - 3
    assert all(e.detail["addresses"] for e in summaries)


def test_locking_names_that_are_no_account_writes_no_audit_row_each(srt: Runtime) -> None:
    srt.settings.login_max_failures = 2
    srt.settings.login_audit_failures = 0
    c = create_app(srt).test_client()
    for i in range(30):
        login(c, f"ghost-{i // 3}", f"guess-{i}-ghost")
    assert audit_rows(srt, "user.lockout") == [] and audit_rows(srt, "login.failure") == []
    assert LoginThrottle(srt.redis, srt.settings).lockout("ghost-0")["locked"]  # locked all the same


def test_a_summary_is_written_by_a_later_sign_in(srt: Runtime) -> None:
    srt.settings.login_audit_failures = 0
    srt.settings.login_audit_period_s = 1
    c = create_app(srt).test_client()
    assert login(c, "op-t1", "first-wrong-guess").status_code == 401
    assert audit_rows(srt, "login.failure") == []
    time.sleep(1.1)
    assert login(c, "op-t1", OPERATOR_PW).status_code == 200
    (summary,) = audit_rows(srt, "login.failure.summary")
    assert summary.detail["failures"] == 1 and summary.detail["accounts"] == {"op-t1": 1}


def test_changing_my_password_is_throttled_too(srt: Runtime) -> None:
    c = create_app(srt).test_client()
    assert login(c, "op-t1", OPERATOR_PW).status_code == 200
    csrf = c.get("/api/auth/me").get_json()["csrf_token"]
    body = {"current_password": "not-my-password", "new_password": "Mot-mat-khau-moi-42"}
    codes = [c.post("/api/auth/password", json=body, headers={"X-CSRF-Token": csrf}).status_code
             for _ in range(srt.settings.login_max_failures + 2)]
    assert codes == [422] * srt.settings.login_max_failures + [429, 429]


def test_sign_in_without_redis_is_refused_not_unthrottled(srt: Runtime) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    real, srt._redis = srt.redis, Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=1)
    try:
        r = login(create_app(srt).test_client(), "op-t1", OPERATOR_PW)
    finally:
        srt._redis = real
    assert r.status_code == 503 and "Redis" in r.get_json()["message"]


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(srt: Runtime) -> None:
    srt.settings.login_address_max_failures = 2
    srt.settings.trusted_proxies = 1
    c = create_app(srt).test_client()
    fwd = lambda a: {"X-Forwarded-For": a}  # noqa: E731
    post = lambda name, pw, a: c.post("/api/auth/login", json={"name": name, "password": pw},  # noqa: E731
                                      headers=fwd(a))
    assert [post(f"n-{i}", "guess-guess-guess", "192.0.2.1").status_code for i in range(3)] == [401, 401, 429]
    assert post("op-t1", OPERATOR_PW, "192.0.2.2").status_code == 200


def test_throttle_settings_are_checked(tmp_path: Path) -> None:
    cfg = tmp_path / "hub.yaml"
    cfg.write_text("login_max_failures: 0\n")
    with pytest.raises(ConfigError, match="login_max_failures must be a whole number of at least 1"):
        load_settings({"HUB_CONFIG": str(cfg)})
    cfg.write_text("login_lockout_s: soon\n")
    with pytest.raises(ConfigError, match="login_lockout_s"):
        load_settings({"HUB_CONFIG": str(cfg)})
    s = load_settings({})
    assert (s.login_max_failures, s.login_lockout_s, s.trusted_proxies) == (10, 900, 0)


def test_the_cli_lifts_a_lock(srt: Runtime, config_file: Path) -> None:
    c = create_app(srt).test_client()
    for i in range(srt.settings.login_max_failures):
        login(c, "op-t1", f"wrong-{i}-guess")
    assert login(c, "op-t1", OPERATOR_PW).status_code == 429

    def hub(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "HUB_CONFIG": str(config_file)}, cwd=ROOT)

    r = hub("users", "unlock", "op-t1")
    assert r.returncode == 0 and "user op-t1 unlocked" in r.stdout, r.stderr
    assert login(c, "op-t1", OPERATOR_PW).status_code == 200
    r = hub("users", "unlock", "nobody-here")
    assert r.returncode != 0 and "no user nobody-here" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert [(e.actor, e.object_id) for e in audit_rows(srt, "user.unlock")][0][1] == "op-t1"


def test_when_a_lock_ends_by_itself_the_account_may_try_again(srt: Runtime) -> None:
    srt.settings.login_max_failures = 3
    srt.settings.login_lockout_s = 1
    c = create_app(srt).test_client()
    assert [login(c, "op-t1", f"wrong-{i}-guess").status_code for i in range(4)] == [401, 401, 401, 429]
    time.sleep(1.2)
    assert login(c, "op-t1", OPERATOR_PW).status_code == 200


def test_no_counter_is_left_without_an_expiry(srt: Runtime) -> None:
    """A success after its address's window ended must not leave a count that never resets."""
    srt.settings.login_window_s = 1
    throttle = LoginThrottle(srt.redis, srt.settings)
    attempt = throttle.admit("op-t1", "192.0.2.50")
    time.sleep(1.2)  # the window ends while the password is being checked
    throttle.succeeded(attempt)
    for key in srt.redis.scan_iter(f"{srt.settings.queue}:login:*"):
        assert srt.redis.ttl(key) > 0, key


def test_an_ipv6_client_is_counted_by_its_64(srt: Runtime) -> None:
    srt.settings.login_address_max_failures = 3
    c = create_app(srt).test_client()
    codes = [login(c, f"v6-{i}", "guess-guess-guess", addr=f"2001:db8:1:2::{i + 1:x}").status_code for i in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    assert login(c, "op-t1", OPERATOR_PW, addr="2001:db8:1:3::1").status_code == 200  # another /64


def test_several_gunicorn_workers_count_the_same_attempts(srt: Runtime, config_file: Path) -> None:
    """Each worker process with its own count would grant the allowance once per worker."""
    import json
    import shutil
    import socket
    import urllib.error
    import urllib.request

    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn")
    if gunicorn is None:
        pytest.skip("gunicorn (the server extra) is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([gunicorn, "-w", "3", "-b", f"127.0.0.1:{port}", "hub.wsgi:app"], cwd=ROOT,
                            env={**os.environ, "HUB_CONFIG": str(config_file)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)

    def post(password: str) -> tuple[int, dict[str, str]]:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/auth/login", method="POST",
                                     data=json.dumps({"name": "op-t1", "password": password}).encode(),
                                     headers={"Content-Type": "application/json", "Connection": "close"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers)

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
                time.sleep(0.2)
        answers = [post(f"worker-guess-{i}") for i in range(30)]
        codes = [code for code, _ in answers]
        limit = srt.settings.login_max_failures
        assert codes == [401] * limit + [429] * (30 - limit), codes
        assert all(int(h["Retry-After"]) > 0 for code, h in answers if code == 429)
        assert post(OPERATOR_PW)[0] == 429
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        proc.stderr.close()
