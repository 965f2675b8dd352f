"""The audit log: one way in (hub.access.audit.record), a hash chain that shows an edited or deleted
row, appends that line up across processes, exports, and reads limited to the caller's areas."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from hub.access import audit
from hub.api import create_app
from hub.access.actors import LOCAL_ADMIN, Actor, local_admin
from hub.store.models import AuditEntry
from hub.runtime import Runtime
from tests.support.accounts import make_token, make_user
from tests.support.api import assert_error, device_body
from tests.support.cli import one_line_error
from tests.support.postgres import pg_url  # noqa: F401  (a fixture)
from tests.support.services import ROOT

HUB_PACKAGE = ROOT / "hub"


def fill(rt: Runtime, n: int = 5) -> None:
    with rt.db.session() as s:
        for i in range(n):
            audit.record(s, LOCAL_ADMIN, "test.event", "thing", f"t-{i}", {"i": i, "note": "Thông báo"},
                         areas=["27694"])


def verdict(rt: Runtime) -> audit.Verdict:
    with rt.db.session() as s:
        return audit.verify(s)


def test_every_audit_write_goes_through_hub_audit() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in HUB_PACKAGE.rglob("*.py") if p != HUB_PACKAGE / "access" / "audit.py"
                 and re.search(r"(?<!class )\bAuditEntry\s*\(|\binsert\(AuditEntry", p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_an_intact_chain_verifies(rt: Runtime, legacy_areas: None) -> None:
    assert str(verdict(rt)) == f"chain intact, 0 entries, head {'0' * 64}"
    fill(rt, 5)
    v = verdict(rt)
    assert v.ok and v.entries == 5 and str(v).startswith("chain intact, 5 entries, head ")


@pytest.mark.parametrize("tamper, seq, words", [
    ("UPDATE audit SET detail = '{\"i\": 99, \"note\": \"Thông báo\"}' WHERE seq = 3", 3, "edited"),
    ("UPDATE audit SET actor = 'someone-else' WHERE seq = 1", 1, "edited"),
    ("UPDATE audit SET area_paths = '' WHERE seq = 5", 5, "edited"),
    ("DELETE FROM audit WHERE seq = 2", 2, "entry 2 is missing"),
    ("DELETE FROM audit WHERE seq = 1", 1, "entry 1 is missing"),
    ("DELETE FROM audit WHERE seq = 5", 5, "removed from the end"),
    ("UPDATE audit SET hash = prev_hash WHERE seq = 4", 4, "edited"),
])
def test_tampering_is_found_at_the_first_broken_link(rt: Runtime, legacy_areas: None, tamper: str, seq: int,
                                                      words: str) -> None:
    fill(rt, 5)
    with rt.db.session() as s:
        s.execute(text(tamper))
    v = verdict(rt)
    assert not v.ok and v.broken_seq == seq and words in v.problem, str(v)


def test_a_rewritten_row_with_a_recomputed_hash_breaks_the_next_link(rt: Runtime, legacy_areas: None) -> None:
    fill(rt, 4)
    with rt.db.session() as s:
        e = s.query(AuditEntry).filter_by(seq=2).one()
        e.detail = {"i": 1, "note": "sửa lại"}
        e.hash = audit.link_hash(e.prev_hash, e)
    v = verdict(rt)
    assert not v.ok and v.broken_seq == 3 and "prev_hash does not match the hash of entry 2" in v.problem


def test_hub_audit_verify_and_export(config_file: Path, rt: Runtime, legacy_areas: None) -> None:
    from tests.support.cli import hub

    fill(rt, 3)
    with rt.db.session() as s:  # an attacker-chosen name must not become a spreadsheet formula
        audit.record(s, "anonymous", "login.failure", "user", "=HYPERLINK(\"http://x\")", {"reason": "unknown user"})
    r = hub(config_file, "audit", "verify")
    assert r.returncode == 0 and r.stdout.startswith("chain intact, 4 entries, head "), r.stderr

    r = hub(config_file, "audit", "export", "--format", "jsonl")
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3, 4] and lines[0]["detail"]["note"] == "Thông báo"
    prev = "0" * 64
    for e in lines:  # the export alone re-verifies
        e["at"] = datetime.fromisoformat(e["at"])
        assert e["prev_hash"] == prev and audit.link_hash(prev, type("E", (), e)) == e["hash"]
        prev = e["hash"]
    assert lines[0]["areas"] == ["27694"]

    out = config_file.parent / "audit.csv"
    r = hub(config_file, "audit", "export", "--format", "csv", "--out", str(out), "--action", "login.")
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 1 and rows[0]["object_id"].startswith("'=HYPERLINK")
    assert "--since" in one_line_error(hub(config_file, "audit", "export", "--since", "yesterday"))

    with rt.db.session() as s:
        s.execute(text("DELETE FROM audit WHERE seq = 2"))
    line = one_line_error(hub(config_file, "audit", "verify"))
    assert r.returncode == 0 and "chain broken at entry 2: entry 2 is missing" in line


APPENDER = """
import sys
from hub.access.audit import record
from hub.config import load_settings
from hub.runtime import Runtime
rt = Runtime(load_settings())
for i in range(int(sys.argv[2])):
    with rt.db.session() as s:
        record(s, f"proc-{sys.argv[1]}", "test.concurrent", "n", str(i),
               {"i": i, "note": "Thông báo khẩn", "ratio": i / 3, "list": [1, None, True]})
rt.close()
"""


def _concurrent_appends(config: Path, procs: int, each: int, env: dict[str, str] | None = None) -> None:
    runs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(p), str(each)], cwd=ROOT,
                             env={**os.environ, "HUB_CONFIG": str(config), **(env or {})},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in range(procs)]
    for p in runs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-2000:]


def test_appends_from_several_processes_keep_one_chain(config_file: Path, rt: Runtime) -> None:
    _concurrent_appends(config_file, 4, 40)
    v = verdict(rt)
    assert v.ok and v.entries == 160, str(v)


def test_appends_from_several_processes_keep_one_chain_on_postgresql(config_file: Path, settings: Any,
                                                                     pg_url: str) -> None:  # noqa: F811
    pg = Runtime(replace(settings, database_url=pg_url))
    try:
        pg.db.create()
        _concurrent_appends(config_file, 4, 40, env={"HUB_DATABASE_URL": pg_url})
        with pg.db.session() as s:
            v = audit.verify(s)
        assert v.ok and v.entries == 160, str(v)
    finally:
        pg.close()


# -- reading it through the API ---------------------------------------------------------------------
def test_api_audit_is_filtered_by_area_and_role(rt: Runtime, legacy_areas: None,
                                                vendors: dict[str, str]) -> None:  # noqa: F811
    admin = create_app(rt, authenticator=local_admin).test_client()
    for did, area in (("spk-1", "27694"), ("spk-3", "28099")):
        assert admin.post("/api/devices", json=device_body(vendors, did, "speaker", area)).status_code == 201
    wide = admin.post("/api/commands", json={"verb": "stop", "target": {"areas": ["80"]}}).get_json()
    far = admin.post("/api/commands", json={"verb": "stop", "target": {"areas": ["28099"]}}).get_json()

    make_user(rt, "p1-viewer", ["viewer"], ["27694"], login=False)
    make_user(rt, "p1-op", ["operator"], ["27694"], login=False)
    _, viewer = make_token(rt, "p1-viewer")
    _, op = make_token(rt, "p1-op")
    c = create_app(rt).test_client()
    h = {"Authorization": f"Bearer {viewer}"}

    seen = c.get("/api/audit?page_size=100", headers=h).get_json()
    ids = {(e["action"], e["object_id"]) for e in seen}
    assert ("device.create", "spk-1") in ids and ("device.create", "spk-3") not in ids
    assert ("command.submit", wide["id"]) in ids and ("command.submit", far["id"]) not in ids
    assert ("user.create", "p1-viewer") in ids
    assert all(e["hash"] and e["prev_hash"] for e in seen)
    assert {e["action"] for e in c.get("/api/audit?action=command.", headers=h).get_json()} == {"command.submit"}
    assert [e["object_id"] for e in c.get("/api/audit?action=device.create", headers=h).get_json()] == ["spk-1"]
    wide_entry = c.get(f"/api/audit?object_id={wide['id']}", headers=h).get_json()[0]
    assert set(wide_entry["areas"]) == {"27694", "28099", "80"} and wide_entry["actor"] == "local-admin"
    later = (datetime.now(timezone.utc) + timedelta(minutes=1)).isoformat()
    assert c.get("/api/audit", query_string={"since": later}, headers=h).get_json() == []
    assert_error(c.get("/api/audit?area=99999", headers=h), 422, "query", "area")
    assert_error(c.get("/api/audit?colour=red", headers=h), 422, "query", "colour")
    assert_error(c.get("/api/audit", headers={"Authorization": f"Bearer {op}"}), 403, contains="needs administrator")
    assert_error(c.get("/api/audit/verify", headers=h), 403)
    everything = admin.get("/api/audit?page_size=1000").get_json()
    assert len(everything) > len(seen) and admin.get("/api/audit/verify").get_json()["ok"] is True


def test_audit_record_defaults_to_the_actors_areas(rt: Runtime, legacy_areas: None) -> None:
    who = Actor(name="ed-1", roles=frozenset({"editor"}), areas=frozenset({"27697"}), via="session")
    with rt.db.session() as s:
        e = audit.record(s, who, "content.create", "content", "c1", {"title": "x"})
    assert e.area_paths == "|/80/794/27697/|" and e.via == "session" and audit.codes_of(e.area_paths) == ["27697"]


def test_changed_settings_are_recorded_once_without_secrets(rt: Runtime, legacy_areas: None) -> None:
    settings = replace(rt.settings, secret_key="k" * 40, redis_url="redis://:hunter2-secret@127.0.0.1:6379/0",
                       plugins={"mqtt_speaker": {"host": "127.0.0.1", "password": "broker-secret-1"}})
    with rt.db.session() as s:
        first = audit.record_config(s, settings, "worker")
        again = audit.record_config(s, settings, "ingest")
        changed = audit.record_config(s, replace(settings, default_ttl_s=900), "worker")
    assert first is not None and again is None and changed.detail["changed"] == ["default_ttl_s"]
    text_ = json.dumps(first.detail)
    assert "hunter2-secret" not in text_ and "broker-secret-1" not in text_ and "k" * 40 not in text_
    assert first.detail["settings"]["secret_key"] == "<set>" and first.actor == "process:worker"
    assert verdict(rt).ok
