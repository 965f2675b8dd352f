"""`hub sources` and /api/sources: health an administrator reads, a configuration tried before it
is saved, a poll on demand; only administrators may poll or try."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hub.access.actors import Actor
from hub.api import create_app
from hub.runtime import Runtime
from hub.testing import WorkerThreads, scaled, wait_until
from hub.content.polling import status_of
from tests.support.cli import hub as hub_cmd
from tests.support.cli import one_line_error
from tests.support.feed_server import FeedServer
from tests.support.sources import SOURCE_KINDS, clean_sources_queue, entry, item, register_json_feed, write_sources


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def src(hub: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.syspath_prepend(str(SOURCE_KINDS))
    register_json_feed(hub.plugins)
    hub.settings.sources_file = str(tmp_path / "sources.yaml")
    write_sources(Path(hub.settings.sources_file))
    yield hub
    clean_sources_queue(hub)


def with_sources(config_file: Path, sources_file: Path) -> Path:
    """The test's HUB_CONFIG with sources_file set, for a `hub` subprocess."""
    cfg = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    cfg["sources_file"] = str(sources_file)
    config_file.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return config_file


def cli(config: Path, *args: str) -> object:
    """`hub` with tests/source_kinds on its path: json_feed found through its entry point."""
    path = os.pathsep.join(p for p in (str(SOURCE_KINDS), os.environ.get("PYTHONPATH", "")) if p)
    return hub_cmd(config, *args, env={"PYTHONPATH": path})


def test_hub_sources_test_tries_an_unsaved_file_and_list_shows_health(
        src: Runtime, feed: FeedServer, config_file: Path, tmp_path: Path) -> None:
    config = with_sources(config_file, Path(src.settings.sources_file))
    feed.items("/tin.json", [item("a1", "Lịch cắt điện")])
    draft = tmp_path / "new.yaml"
    write_sources(draft, entry("tin", feed.url("/tin.json")), entry("hong", feed.url("/gone.json")))
    r = cli(config, "sources", "test", "tin", "--file", str(draft))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == ["ok: source tin: 1 items", "  a1: Lịch cắt điện"]
    assert one_line_error(cli(config, "sources", "test", "hong", "--file", str(draft))) == (
        f"hub: error: source hong: HTTP 404 from {feed.url('/gone.json')}")
    assert "no source named 'tin'" in one_line_error(cli(config, "sources", "test", "tin"))  # not saved yet
    write_sources(Path(src.settings.sources_file), entry("tin", feed.url("/tin.json")))
    r = cli(config, "sources", "poll", "tin")
    assert r.returncode == 0 and "source tin: 1 items; created 1" in r.stdout, r.stderr
    r = cli(config, "sources", "list")
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("tin "))
    assert " ok " in line and "items 1 (last 1)" in line and "last success 20" in line


def api(rt: Runtime, roles: set[str]):  # noqa: ANN201
    actor = Actor(name="nguoi-dung", roles=frozenset(roles), via="session")
    return create_app(rt, authenticator=lambda _req: actor).test_client()


def test_the_api_lists_health_tries_a_configuration_and_polls_on_demand(
        src: Runtime, feed: FeedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    feed.items("/tin.json", [item("a1", "Một")])
    write_sources(Path(src.settings.sources_file), entry("tin", feed.url("/tin.json"), token="${TIN_SECRET}"))
    monkeypatch.setenv("TIN_SECRET", "khong-ai-biet")
    admin, viewer = api(src, {"administrator"}), api(src, {"viewer"})
    listed = viewer.get("/api/sources").get_json()
    assert listed["error"] is None and [s["name"] for s in listed["sources"]] == ["tin"]
    tin = viewer.get("/api/sources/tin").get_json()
    assert tin["config"]["token"] == "${TIN_SECRET}" and tin["health"]["last_success_at"] is None
    assert "khong-ai-biet" not in str(listed)
    assert viewer.post("/api/sources/tin/poll").status_code == 403
    assert viewer.post("/api/sources/test", json={}).status_code == 403
    with WorkerThreads(src, queues=[src.queue("sources")]):
        r = admin.post("/api/sources/tin/poll")
        assert r.status_code == 202 and r.get_json()["enqueued"] is True
        assert wait_until(lambda: (status_of(src, "tin") or None) is not None, scaled(10))
    assert viewer.get("/api/sources/tin").get_json()["health"]["items_fetched"] == 1
    tried = admin.post("/api/sources/test", json=entry("moi", feed.url("/tin.json"))).get_json()
    assert tried == {"ok": True, "detail": "1 items", "sample": [{"external_id": "a1", "title": "Một"}]}
    bad = admin.post("/api/sources/test", json=entry("moi", feed.url("/x"), interval_s=0.01)).get_json()
    assert bad["ok"] is False and "interval_s" in bad["detail"]
    assert admin.get("/api/sources/khong-co").status_code == 404
