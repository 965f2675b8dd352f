"""Sources by configuration: a source added to the sources file of a running hub is polled by rq jobs
and its items become drafts, with no restart; a broken source shows in its health while the others
keep polling; a broken edit of the file keeps the last good configuration and is reported."""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from hub.content.polling import Poller, backoff, poll, status_of
from hub.content.source_config import SourceConfigError, parse_text
from hub.runtime import Runtime
from hub.store.models import AuditEntry, Content
from hub.testing import WorkerThreads, scaled, wait_until
from tests.support.feed_server import FeedServer
from tests.support.sources import SOURCE_KINDS, clean_sources_queue, entry, item, register_json_feed, write_sources


@pytest.fixture
def src(hub: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.syspath_prepend(str(SOURCE_KINDS))
    register_json_feed(hub.plugins)
    hub.settings.sources_file = str(tmp_path / "sources.yaml")
    hub.settings.source_tick_s = 0.05
    write_sources(Path(hub.settings.sources_file))
    yield hub
    clean_sources_queue(hub)


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def running(src: Runtime) -> Iterator[Poller]:
    """`hub sources run` in this process: the tick on a thread, a real rq worker on the sources queue."""
    poller, stop = Poller(src), threading.Event()
    ticker = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    with WorkerThreads(src, queues=[src.queue("sources")]):
        ticker.start()
        yield poller
        stop.set()
        ticker.join(10)


def contents_of(rt: Runtime, source: str) -> list[Content]:
    with rt.db.session() as s:
        return list(s.scalars(select(Content).where(Content.source == source).order_by(Content.external_id)))


def test_a_source_added_to_the_file_of_a_running_hub_yields_drafts_within_one_interval(
        src: Runtime, feed: FeedServer, running: Poller) -> None:
    feed.items("/tin.json", [item("a1", "Lịch cắt điện"), item("a2", "Tiêm chủng", area_codes=["27694"])])
    assert wait_until(lambda: running.book.sources == {} and running.book.error is None, scaled(5))
    interval = 5.0  # a new source is polled at once; this is the bound, slack for a loaded machine
    write_sources(Path(src.settings.sources_file), entry("tin", feed.url("/tin.json"), interval_s=interval,
                                                         category="thoi-su"))
    assert wait_until(lambda: len(contents_of(src, "tin")) == 2, scaled(interval)), status_of(src, "tin")
    a1, a2 = contents_of(src, "tin")
    assert (a1.status, a1.kind, a1.area_code, a1.category, a1.created_by) == (
        "draft", "tts_text", "80", "thoi-su", "source:tin")
    assert a1.body == "Nội dung Lịch cắt điện" and a1.origin["source"] == "tin"
    assert a2.area_code == "27694"  # the item's own area, not the source's default
    # the poll records its health once it has taken every item in (the contents show first)
    assert wait_until(lambda: (st := status_of(src, "tin")) is not None and st.last_success_at is not None, scaled(5))
    health = status_of(src, "tin")
    assert health.items_fetched == 2 and health.last_error is None


def test_broken_sources_show_in_their_health_and_the_others_keep_polling(
        src: Runtime, feed: FeedServer, running: Poller) -> None:
    feed.items("/good.json", [item("g1", "Tin tốt")])
    feed.answer("/bad.xml", 200, b"<rss>not json</rss>")
    feed.answer("/slow.json", 200, b"[]", delay=scaled(3))
    write_sources(Path(src.settings.sources_file),
                  entry("missing", feed.url("/gone.json")), entry("invalid", feed.url("/bad.xml")),
                  entry("slow", feed.url("/slow.json"), timeout_s=0.3), entry("good", feed.url("/good.json")))

    def failed(name: str) -> bool:
        st = status_of(src, name)
        return st is not None and st.failures >= 1

    assert wait_until(lambda: all(failed(n) for n in ("missing", "invalid", "slow")), scaled(10))
    assert "HTTP 404" in status_of(src, "missing").last_error
    assert "is not JSON" in status_of(src, "invalid").last_error
    assert "timed out after 0.3 s" in status_of(src, "slow").last_error
    # the good source went on being polled every half second meanwhile
    assert wait_until(lambda: feed.hits.get("/good.json", 0) >= 3, scaled(10))
    good = status_of(src, "good")
    assert good.failures == 0 and good.last_error is None and [c.external_id for c in contents_of(src, "good")] == [
        "g1"]
    missing = status_of(src, "missing")
    assert missing.next_poll_at > missing.last_attempt_at  # it waits, longer at each failure
    cfg = running.book.sources["missing"]
    assert backoff(src, cfg, 1) < backoff(src, cfg, 3) and backoff(src, cfg, 40) == src.settings.source_backoff_max_s


def test_a_poll_already_queued_is_not_enqueued_twice(src: Runtime, feed: FeedServer) -> None:
    feed.items("/tin.json", [item("a1", "Một")])
    write_sources(Path(src.settings.sources_file), entry("tin", feed.url("/tin.json")))
    poller = Poller(src)
    assert poller.tick() == ["tin"]
    assert poller.tick() == []  # no worker has run it yet: the lock holds
    assert len(src.queue("sources")) == 1


def test_a_broken_edit_keeps_the_last_good_configuration_and_is_reported(src: Runtime, feed: FeedServer) -> None:
    path = Path(src.settings.sources_file)
    write_sources(path, entry("tin", feed.url("/tin.json")))
    poller = Poller(src)
    poller.tick()
    write_sources(path, text="sources:\n  - name: tin\n    plugin: json_feed\n    url: [unclosed\n")
    poller.tick()
    assert list(poller.book.sources) == ["tin"]
    assert poller.book.error.startswith(f"{path}: not valid YAML")
    write_sources(path, entry("tin", feed.url("/tin.json"), interval_s=0.01))
    poller.tick()
    assert poller.book.error == f"{path}: source tin: interval_s: 0.01 is below the plugin json_feed's " \
                                f"min_interval_s (0.1)"
    assert list(poller.book.sources) == ["tin"]
    with src.db.session() as s:
        reported = [e.detail["error"] for e in s.scalars(select(AuditEntry).where(
            AuditEntry.action == "sources.config_error"))]
    assert len(reported) == 2 and "not valid YAML" in reported[0]
    write_sources(path, entry("tin", feed.url("/tin.json")), entry("more", feed.url("/more.json")))
    poller.tick()
    assert poller.book.error is None and list(poller.book.sources) == ["tin", "more"]


def test_a_file_read_half_written_is_read_again_when_completed_within_the_same_second(
        src: Runtime, feed: FeedServer) -> None:
    """An editor's save read midway, then finished within the file system's timestamp granularity:
    the mtime does not move, yet the poller runs the completed file, not the half it read."""
    path = Path(src.settings.sources_file)
    whole = yaml.safe_dump({"sources": [entry("tin", feed.url("/tin.json")), entry("more", feed.url("/more.json"))]},
                           allow_unicode=True)
    stamp = time.time_ns()
    path.write_text(whole[:whole.index("more") + 2], encoding="utf-8")  # cut inside the second source
    os.utime(path, ns=(stamp, stamp))
    poller = Poller(src)
    poller.tick()
    assert list(poller.book.sources) != ["tin", "more"]
    path.write_text(whole, encoding="utf-8")
    os.utime(path, ns=(stamp, stamp))  # the same mtime as the half-written read
    poller.tick()
    assert poller.book.error is None and list(poller.book.sources) == ["tin", "more"]


def test_credentials_come_from_the_environment_and_a_missing_one_is_named(src: Runtime) -> None:
    text = "sources:\n  - {name: tin, plugin: json_feed, url: 'http://127.0.0.1:9/x', token: '${TIN_TOKEN}'}\n"
    with pytest.raises(SourceConfigError) as e:
        parse_text(text, "sources.yaml", src.plugins, env={})
    assert str(e.value) == "sources.yaml: source tin: token: environment variable TIN_TOKEN is not set"
    cfg = parse_text(text, "sources.yaml", src.plugins, env={"TIN_TOKEN": "s3cret"})["tin"]
    assert cfg.options["token"] == "s3cret"
    assert "s3cret" not in repr(cfg) and cfg.shown()["token"] == "${TIN_TOKEN}"
    inline = parse_text(text.replace("'${TIN_TOKEN}'", "written-in-the-file"), "sources.yaml", src.plugins, env={})
    assert inline["tin"].shown()["token"] == "<set>"  # a secret written in the file is still never shown


@pytest.mark.parametrize(("entry_text", "error"), [
    ("{name: tin, plugin: nosuch, url: x}", "sources.yaml: source tin: plugin: no source plugin named 'nosuch'"),
    ("{name: tin, plugin: json_feed}", "sources.yaml: source tin: source json_feed: configuration: url:"),
    ("{name: tin, plugin: json_feed, url: x, emergency: shout}", "sources.yaml: source tin: emergency: expected"),
    ("{name: tin, plugin: json_feed, url: x, auto_publish: 'yes'}", "sources.yaml: source tin: auto_publish: "
                                                                    "expected true or false"),
    ("{name: Tin Tức, plugin: json_feed, url: x}", "sources.yaml: source: name: expected lower-case"),
])
def test_a_wrong_source_is_refused_naming_file_source_and_key(src: Runtime, entry_text: str, error: str) -> None:
    with pytest.raises(SourceConfigError) as e:
        parse_text(f"sources:\n  - {entry_text}\n", "sources.yaml", src.plugins, env={})
    assert str(e.value).startswith(error), str(e.value)


def test_a_poll_records_success_after_failures_and_resets_the_backoff(src: Runtime, feed: FeedServer) -> None:
    write_sources(Path(src.settings.sources_file), entry("tin", feed.url("/tin.json")))
    cfg = parse_text(Path(src.settings.sources_file).read_text(), "f", src.plugins)["tin"]
    assert not poll(src, cfg).ok and not poll(src, cfg).ok
    assert status_of(src, "tin").failures == 2
    feed.items("/tin.json", [item("a1", "Một")])
    assert poll(src, cfg).ok
    st = status_of(src, "tin")
    assert (st.failures, st.items_last, st.items_fetched) == (0, 1, 1)
    assert "HTTP 404" in st.last_error  # the last error stays visible, with its time, after recovery


def test_a_source_pointing_at_the_hubs_own_services_is_refused_naming_which(src: Runtime) -> None:
    """A source typed by mistake (or by someone hostile) must not make the hub send requests to its
    own Redis or broker: the poll fails, its health says why, and the test of it says the same."""
    from hub.content.sources import try_entry

    write_sources(Path(src.settings.sources_file), entry("redis", "http://127.0.0.1:6379/"),
                  entry("broker", "http://localhost:1883/x"))
    poller = Poller(src)
    poller.tick()
    for name, what in (("redis", "Redis (redis_url)"), ("broker", "MQTT broker")):
        outcome = poll(src, poller.book.sources[name])
        assert not outcome.ok and f"is the hub's own {what}" in outcome.error, outcome
        assert f"is the hub's own {what}" in status_of(src, name).last_error
    check = try_entry(src, entry("probe", "http://127.0.0.1:6379/"))
    assert not check.ok and "url: 127.0.0.1:6379 is the hub's own Redis" in check.detail
