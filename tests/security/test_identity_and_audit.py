"""Attacks on who-did-what: a deleted account's name taken again, a flood of refused writes, and
someone with database access rewriting the audit chain or cutting off its tail."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update

from hub.access import accounts, audit
from hub.api import create_app
from hub.access.actors import LOCAL_ADMIN, local_admin
from hub.store.db import utcnow
from hub.store.models import AuditEntry, AuditRefusal, Command, User
from hub.fleet.registry import upsert_device
from hub.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
OWN, SIBLING, OTHER_DISTRICT = "27694", "27697", "28099"


def hub_cli(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HUB_CONFIG": str(config), **(env or {})}, cwd=ROOT)


def account(rt: Runtime, name: str, roles: list[str], areas: list[str]) -> dict[str, str]:
    """A new account with an API token; the headers that carry it."""
    with rt.db.session() as s:
        user, _ = accounts.create_user(s, LOCAL_ADMIN, name, roles, areas, login=False)
        _, raw = accounts.create_token(s, LOCAL_ADMIN, user, "probe")
    return {"Authorization": f"Bearer {raw}"}


def user_id(rt: Runtime, name: str) -> int:
    with rt.db.session() as s:
        return s.scalar(select(User.id).where(User.name == name))


def delete_account(rt: Runtime, name: str) -> None:
    with rt.db.session() as s:
        accounts.delete_user(s, LOCAL_ADMIN, accounts.get_user(s, name))


def device(rt: Runtime, vendor: str, did: str, area: str) -> None:
    with rt.db.session() as s:
        upsert_device(s, rt.plugins, {"id": did, "vendor": vendor, "kind": "speaker", "area_code": area,
                                      "address": f"a-{did}", "tags": []})


def in_an_hour() -> str:
    return (utcnow() + timedelta(hours=1)).isoformat()


# -- 1. a re-created account name ---------------------------------------------------------------------
def test_a_recreated_account_name_inherits_no_command_key_or_audit_trail(rt: Runtime, legacy_areas: None,
                                                                         vendors: dict[str, str]) -> None:
    device(rt, vendors["speaker"], "spk-own", OWN)
    device(rt, vendors["speaker"], "spk-sibling", SIBLING)
    client = create_app(rt).test_client()
    old = account(rt, "op1", ["operator"], [OWN])
    old_id = user_id(rt, "op1")
    r = client.post("/api/commands", headers=old, json={
        "verb": "stop", "target": {"areas": [OWN]}, "start_at": in_an_hour(), "idempotency_key": "ban-tin-0700"})
    assert r.status_code == 201, r.get_json()
    old_cmd = r.get_json()["id"]

    delete_account(rt, "op1")
    new = account(rt, "op1", ["operator"], [SIBLING])
    assert user_id(rt, "op1") != old_id

    # the old key is no longer "mine": the new account gets a new command, not a replay or a conflict
    r = client.post("/api/commands", headers=new, json={
        "verb": "stop", "target": {"areas": [SIBLING]}, "start_at": in_an_hour(), "idempotency_key": "ban-tin-0700"})
    assert r.status_code == 201, r.get_json()
    new_cmd = r.get_json()["id"]
    assert new_cmd != old_cmd and r.get_json()["replayed"] is False
    again = client.post("/api/commands", headers=new, json={
        "verb": "stop", "target": {"areas": [SIBLING]}, "start_at": r.get_json()["start_at"],
        "idempotency_key": "ban-tin-0700"})
    assert again.status_code == 200 and again.get_json()["id"] == new_cmd  # its own key still replays

    # the old account's command, in a commune the new one does not hold, is not "its own"
    listed = {c["id"] for c in client.get("/api/commands", headers=new).get_json()}
    assert old_cmd not in listed and new_cmd in listed
    assert client.get(f"/api/commands/{old_cmd}", headers=new).status_code == 404
    assert client.get(f"/api/commands/{old_cmd}/deliveries", headers=new).status_code == 404
    assert client.post(f"/api/commands/{old_cmd}/cancel", headers=new).status_code == 404
    with rt.db.session() as s:
        assert s.get(Command, old_cmd).cancelled_at is None
    assert client.post(f"/api/commands/{new_cmd}/cancel", headers=new).status_code == 200

    # the audit trail tells the two accounts apart
    admin = create_app(rt, authenticator=local_admin).test_client()
    trail = admin.get("/api/audit?actor=op1&action=command.&page_size=100").get_json()
    by_command = {e["object_id"]: e["actor_id"] for e in trail if e["action"] == "command.submit"}
    assert by_command == {old_cmd: old_id, new_cmd: user_id(rt, "op1")}
    assert [e["object_id"] for e in admin.get(f"/api/audit?actor_id={old_id}").get_json()] == [old_cmd]
    users = admin.get("/api/audit?object_type=user&object_id=op1&page_size=100").get_json()
    assert [(e["action"], e["detail"]["id"]) for e in reversed(users)] == [
        ("user.create", old_id), ("user.delete", old_id), ("user.create", user_id(rt, "op1"))]


def test_commands_from_before_the_upgrade_stay_with_the_account_that_issued_them(
        rt: Runtime, legacy_areas: None, vendors: dict[str, str]) -> None:
    """Rows written before commands carried the issuer's id keep working for their issuer, and
    for nobody who took the name later."""
    device(rt, vendors["speaker"], "spk-own", OWN)
    client = create_app(rt).test_client()
    body = {"verb": "stop", "target": {"areas": [OWN]}, "start_at": in_an_hour(), "idempotency_key": "cu-1"}
    first = account(rt, "op2", ["operator"], [OWN])
    r = client.post("/api/commands", headers=first, json=body)
    assert r.status_code == 201
    cmd = r.get_json()["id"]
    with rt.db.session() as s:  # as an older hub wrote it: by name only
        s.execute(text("UPDATE commands SET issuer_id = NULL, idempotency_key = account_idempotency_key, "
                       "account_idempotency_key = NULL WHERE id = :id"), {"id": cmd})
    replay = client.post("/api/commands", headers=first, json={**body, "start_at": r.get_json()["start_at"]})
    assert replay.status_code == 200 and replay.get_json()["id"] == cmd

    delete_account(rt, "op2")
    later = account(rt, "op2", ["operator"], [SIBLING])
    r = client.post("/api/commands", headers=later, json={**body, "target": {"areas": [SIBLING]}})
    assert r.status_code == 201 and r.get_json()["id"] != cmd
    assert client.get(f"/api/commands/{cmd}", headers=later).status_code == 404


# -- 2. refused writes ------------------------------------------------------------------------------------
def denied(rt: Runtime) -> list[AuditEntry]:
    with rt.db.session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == "access.denied")
                              .order_by(AuditEntry.seq)))


def test_refused_writes_are_audited_at_most_once_a_minute_per_actor_and_endpoint(
        rt: Runtime, legacy_areas: None, vendors: dict[str, str]) -> None:
    device(rt, vendors["speaker"], "spk-far", OTHER_DISTRICT)
    client = create_app(rt).test_client()
    viewer = account(rt, "v1", ["viewer"], [OWN])
    for _ in range(30):
        assert client.post("/api/commands", headers=viewer, json={"verb": "stop",
                                                                   "target": {"areas": [OWN]}}).status_code == 403
    for _ in range(3):
        assert client.patch("/api/devices/spk-far", headers=viewer, json={"name": "x"}).status_code == 403
    rows = denied(rt)
    assert [(e.actor, e.object_id, e.detail["method"], e.detail["refused"]) for e in rows] == [
        ("v1", "commands.Commands", "POST", 1), ("v1", "devices.DeviceById", "PATCH", 1)]
    assert rows[0].actor_id == user_id(rt, "v1") and "needs administrator or operator" in rows[0].detail["message"]
    assert rows[0].area_paths == "|/80/794/27694/|"  # readers of the actor's commune see it

    # a minute on, the next refusal writes one row that counts the 29 held back and itself
    with rt.db.session() as s:
        s.execute(update(AuditRefusal).values(logged_at=utcnow() - timedelta(seconds=61)))
    assert client.post("/api/commands", headers=viewer, json={"verb": "stop"}).status_code == 403
    last = denied(rt)[-1]
    assert last.object_id == "commands.Commands" and last.detail["refused"] == 30
    assert last.detail["first_at"] < last.detail["last_at"]
    assert sum(e.detail["refused"] for e in denied(rt) if e.object_id == "commands.Commands") == 31

    # a refusal for want of area (not of role) is audited the same way, naming what was outside
    op = account(rt, "op3", ["operator"], [OWN])
    r = client.post("/api/commands", headers=op, json={"verb": "stop", "target": {"areas": [OTHER_DISTRICT]}})
    assert r.status_code == 403
    last = denied(rt)[-1]
    assert last.actor == "op3" and "28099" in last.detail["message"] and last.detail["path"] == "/api/commands"
    with rt.db.session() as s:
        assert audit.verify(s).ok


# -- 3. the audit chain against someone with database access ---------------------------------------------
def fill(rt: Runtime, n: int) -> None:
    with rt.db.session() as s:
        for i in range(n):
            audit.record(s, LOCAL_ADMIN, "device.update", "device", f"spk-{i}", {"i": i}, areas=[OWN])


def rewrite_from(rt: Runtime, k: int) -> None:
    """What someone with write access to the database can do: edit every row from k on,
    recompute the plain sha256 links, and move the head to the new last link."""
    with rt.db.session() as s:
        rows = s.execute(select(AuditEntry.__table__).order_by(AuditEntry.seq)).all()
        prev = rows[k - 2].hash if k > 1 else "0" * 64
        for row in rows[k - 1:]:
            e = type("E", (), dict(row._mapping))
            e.actor, e.detail = "someone-else", {"i": -1}
            digest = hashlib.sha256(prev.encode("ascii") + audit.canonical(e)).hexdigest()
            s.execute(text("UPDATE audit SET actor = :a, detail = :d, prev_hash = :p, hash = :h WHERE seq = :q"),
                      {"a": e.actor, "d": json.dumps(e.detail), "p": prev, "h": digest, "q": row.seq})
            prev = digest
        s.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": prev})


def test_a_chain_rewritten_from_row_k_with_recomputed_hashes_is_found_at_k(config_file: Path, rt: Runtime,
                                                                         legacy_areas: None) -> None:
    fill(rt, 8)
    assert hub_cli(config_file, "audit", "verify").returncode == 0
    rewrite_from(rt, 5)
    r = hub_cli(config_file, "audit", "verify")
    assert r.returncode != 0 and "chain broken at entry 5" in r.stderr, r.stdout + r.stderr


def test_a_chain_rewritten_from_the_first_row_is_found_at_the_first_row(rt: Runtime, legacy_areas: None) -> None:
    fill(rt, 4)
    rewrite_from(rt, 1)
    with rt.db.session() as s:
        v = audit.verify(s)
    assert not v.ok and v.broken_seq == 1, str(v)


def test_moving_the_start_of_the_keyed_chain_is_found(rt: Runtime, legacy_areas: None) -> None:
    """Claiming that rows were written before the chain was keyed, to pass off plain hashes."""
    fill(rt, 4)
    rewrite_from(rt, 3)
    with rt.db.session() as s:
        s.execute(text("UPDATE meta SET value = '5' || substr(value, 2) WHERE key = 'audit_keyed_from'"))
        v = audit.verify(s)
    assert not v.ok and "keyed" in v.problem, str(v)


def test_a_deleted_tail_is_found_against_an_exported_head(config_file: Path, rt: Runtime,
                                                          legacy_areas: None, tmp_path: Path) -> None:
    fill(rt, 6)
    head = tmp_path / "elsewhere" / "audit-head.json"
    r = hub_cli(config_file, "audit", "head", "--export", str(head))
    assert r.returncode == 0, r.stderr
    assert json.loads(head.read_text(encoding="utf-8"))["seq"] == 6
    assert hub_cli(config_file, "audit", "verify", "--head", str(head)).returncode == 0
    fill(rt, 1)  # the log grows past the exported head: still fine
    assert hub_cli(config_file, "audit", "verify", "--head", str(head)).returncode == 0
    with rt.db.session() as s:  # cut entries 5–7 and point the head at entry 4
        four = s.scalar(select(AuditEntry.hash).where(AuditEntry.seq == 4))
        s.execute(text("DELETE FROM audit WHERE seq > 4"))
        s.execute(text("UPDATE audit_head SET seq = 4, hash = :h WHERE id = 1"), {"h": four})
    assert hub_cli(config_file, "audit", "verify").returncode == 0  # consistent, as far as the database goes
    r = hub_cli(config_file, "audit", "verify", "--head", str(head))
    assert r.returncode != 0 and "entry 6" in r.stderr and "removed" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_bad_exported_head_is_one_line_naming_it(config_file: Path, rt: Runtime, tmp_path: Path) -> None:
    fill(rt, 1)
    bad = tmp_path / "head.json"
    for content, words in (("{", "not JSON"), ('{"seq": 1}', "needs seq and hash"), (None, "No such file")):
        if content is None:
            bad.unlink()
        else:
            bad.write_text(content, encoding="utf-8")
        r = hub_cli(config_file, "audit", "verify", "--head", str(bad))
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0 and len(lines) == 1 and "--head" in lines[0] and words in lines[0], r.stderr


def test_verify_with_another_key_says_so(config_file: Path, rt: Runtime, legacy_areas: None) -> None:
    fill(rt, 2)
    r = hub_cli(config_file, "audit", "verify", env={"HUB_AUDIT_KEY": "x" * 48})
    assert r.returncode != 0 and "audit key" in r.stderr and "not the key" in r.stderr, r.stderr


def test_a_process_with_another_key_changes_nothing(config_file: Path, rt: Runtime, legacy_areas: None) -> None:
    """A host given another key would write links that no longer verify: it refuses at once."""
    fill(rt, 1)
    r = hub_cli(config_file, "users", "add", "x-op", "--role", "operator", "--area", OWN, "--no-login",
                env={"HUB_AUDIT_KEY": "y" * 48})
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and "audit key" in lines[0], r.stderr
    with rt.db.session() as s:
        assert accounts.get_user(s, "x-op") is None
        assert audit.verify(s).ok


def test_an_unkeyed_chain_from_before_the_upgrade_says_where_the_keyed_chain_starts(
        rt: Runtime, legacy_areas: None) -> None:
    with rt.db.engine.begin() as c:  # back to schema 2, holding three entries as that hub wrote them
        c.execute(text("DELETE FROM meta WHERE key = 'audit_keyed_from'"))
        c.execute(text("DROP INDEX ux_commands_account_idempotency"))
        for table, column in (("commands", "issuer_id"), ("commands", "account_idempotency_key"),
                              ("audit", "actor_id")):
            c.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        c.execute(text("UPDATE meta SET value = '2' WHERE key = 'schema_version'"))
        prev = "0" * 64
        for seq in (1, 2, 3):
            e: Any = type("E", (), {"seq": seq, "at": utcnow(), "actor": "tn-admin", "via": "cli", "action": "x.y",
                                    "object_type": "x", "object_id": str(seq), "area_paths": "", "detail": None})
            digest = hashlib.sha256(prev.encode("ascii") + audit.canonical(e)).hexdigest()
            c.execute(text("INSERT INTO audit (seq, at, actor, via, action, object_type, object_id, area_paths, "
                           "detail, prev_hash, hash) VALUES (:seq, :at, 'tn-admin', 'cli', 'x.y', 'x', :oid, '', "
                           "NULL, :prev, :hash)"),
                      {"seq": seq, "at": e.at.replace(tzinfo=None), "oid": str(seq), "prev": prev, "hash": digest})
            prev = digest
        c.execute(text("UPDATE audit_head SET seq = 3, hash = :h WHERE id = 1"), {"h": prev})
    assert [line.split(":")[0] for line in rt.db.upgrade()] == ["3", "4", "5"]  # 5: broadcasting, reports
    fill(rt, 2)
    with rt.db.session() as s:
        v = audit.verify(s)
    assert v.ok and v.keyed_from == 4 and "keyed from entry 4" in str(v) and "1–3" in str(v), str(v)
    rewrite_from(rt, 2)  # the plain part rewritten: the first keyed entry no longer links to it
    with rt.db.session() as s:
        v = audit.verify(s)
    assert not v.ok and v.broken_seq == 4, str(v)


def test_the_audit_key_lives_outside_the_database_in_a_private_file(rt: Runtime, legacy_areas: None) -> None:
    fill(rt, 1)
    path = Path(rt.settings.state_dir) / "audit_key"
    assert path.exists() and path.stat().st_mode & 0o077 == 0
    key = path.read_text(encoding="ascii").strip()
    with rt.db.session() as s:
        dump = json.dumps([list(map(str, r)) for t in ("meta", "audit", "audit_head")
                           for r in s.execute(text(f"SELECT * FROM {t}"))])
    assert key not in dump
