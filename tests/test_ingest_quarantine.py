"""The ingest's quarantine as administrators see it: what it holds (a message a listener could
not parse, a report the database refused), counted by the ingest, listed newest first by
`GET /api/ingest/quarantine` within the caller's areas, and by `hub ingest quarantine`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.api import create_app
from hub.access.actors import Actor, local_admin
from hub.delivery.ingest import Ingest
from tests.support.ingest_fixtures import runtime_with_devices


@pytest.fixture
def quarantined(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    rt, ids = runtime_with_devices(url, 3)
    ing = Ingest(rt, vendors=[])
    confirmed: list[str] = []
    # a listener could not parse these; the second comes from an address no device has
    ing.sink.rejected("loopback", "dev-00000", "status", b'{"ts": "9999-12-31T23:59:59-01:00"}',
                      "status from dev-00000: ts: out of range", done=lambda: confirmed.append("r1"))
    ing.sink.rejected("loopback", "stranger", "ack", b"\xff\xfe", "ack from stranger: not JSON",
                      done=lambda: confirmed.append("r2"))
    # past every parser, a number no SQLite integer holds, between two good reports
    ing.sink.status("loopback", "dev-00001", {"online": True, "volume": 7}, done=lambda: confirmed.append("g1"))
    ing.sink.status("loopback", "dev-00002", {"online": True, "volume": 2**70}, done=lambda: confirmed.append("b"))
    ing.sink.status("loopback", "dev-00000", {"online": True, "volume": 9}, done=lambda: confirmed.append("g2"))
    while ing.flush():
        pass
    yield rt, ing, confirmed, url
    rt.db.dispose()


def test_the_ingest_keeps_and_counts_what_it_could_not_store(quarantined) -> None:
    rt, ing, confirmed, _url = quarantined
    assert sorted(confirmed) == ["b", "g1", "g2", "r1", "r2"]  # stored or quarantined: all acknowledged
    assert ing.stats["rejected"] == 2 and ing.stats["quarantined"] == 1 and ing.stats["status"] == 2
    body = create_app(rt, authenticator=local_admin).test_client().get("/api/ingest/quarantine").get_json()
    assert [(q["address"], q["kind"], q["device_id"]) for q in body] == [
        ("dev-00002", "status", "DEV-00002"), ("stranger", "ack", None), ("dev-00000", "status", "DEV-00000")]
    assert "2**70" not in body[0]["payload"] and str(2**70) in body[0]["payload"]
    assert body[0]["reason"].startswith("could not be stored: ")
    assert body[1]["payload"] == repr(b"\xff\xfe")


def test_administrators_see_the_quarantine_of_their_areas_only(quarantined) -> None:
    rt = quarantined[0]

    def get(roles: set[str], areas: set[str], query: str = ""):  # noqa: ANN202
        actor = Actor(name="x", roles=frozenset(roles), areas=frozenset(areas))
        return create_app(rt, authenticator=lambda _r: actor).test_client().get(f"/api/ingest/quarantine{query}")

    own = get({"administrator"}, {"27694"})
    assert own.status_code == 200
    assert sorted(q["address"] for q in own.get_json()) == ["dev-00000", "dev-00002"]  # not the stranger
    assert get({"administrator"}, {"27697"}).get_json() == []
    assert get({"operator", "viewer"}, {"27694"}).status_code == 403
    bad = get({"administrator"}, {"27694"}, "?since=yesterday")
    assert bad.status_code == 422 and "since" in bad.get_json()["errors"]["query"]


def test_hub_ingest_quarantine_lists_everything(quarantined) -> None:
    url = quarantined[3]
    env = {**os.environ, "HUB_DATABASE_URL": url}
    env.pop("HUB_CONFIG", None)
    r = subprocess.run([sys.executable, "-m", "hub.cli", "ingest", "quarantine"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "stranger ack: ack from stranger: not JSON" in r.stdout
    assert r.stdout.strip().endswith("3 quarantined")
    r = subprocess.run([sys.executable, "-m", "hub.cli", "ingest", "quarantine", "--limit", "0"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0 and "--limit" in r.stderr


def test_a_flood_of_garbage_does_not_fill_the_quarantine(tmp_path: Path) -> None:
    from hub.delivery import quarantine
    from hub.delivery.ingest import REJECTED_PER_DEVICE_AND_BATCH

    rt, _ids = runtime_with_devices(f"sqlite:///{tmp_path / 'hub.sqlite3'}", 1)
    ing = Ingest(rt, vendors=[])
    confirmed: list[int] = []
    for i in range(50):
        ing.sink.rejected("loopback", "dev-00000", "status", b"garbage", "not JSON", done=lambda i=i: confirmed.append(i))
    while ing.flush():
        pass
    try:
        assert sorted(confirmed) == list(range(50))
        with rt.db.session() as s:
            assert quarantine.count(s) == REJECTED_PER_DEVICE_AND_BATCH
            assert ing.stats["rejected_not_kept"] == 50 - REJECTED_PER_DEVICE_AND_BATCH
            assert quarantine.prune(s, keep=2) == REJECTED_PER_DEVICE_AND_BATCH - 2
        with rt.db.session() as s:
            assert quarantine.count(s) == 2
    finally:
        rt.db.dispose()
