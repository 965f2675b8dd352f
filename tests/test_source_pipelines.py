"""The built-in sources through the hub, end to end, with their servers on loopback: an RSS source
added to the sources file of a running hub yields drafts at once while broken feeds only mark their
own health; a CAP emergency with a polygon is dispatched to exactly the speakers inside it, an
Update replaces it and a Cancel withdraws it without a broadcast; and one hub follows the
published contents of another, each once."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from hub.access.actors import Actor
from hub.api import create_app
from hub.content.polling import Poller, poll, status_of
from hub.content.source_config import parse_entry
from hub.runtime import Runtime
from hub.store.models import Command, Content, Delivery
from hub.testing import WorkerThreads, scaled, wait_until
from tests.support import dispatch
from tests.support.feed_server import FeedServer
from tests.support.media import serve
from tests.support.sources import clean_sources_queue, write_sources

pytest.importorskip("hub_source_rss")
pytest.importorskip("hub_source_cap")
pytest.importorskip("hub_source_hub_follow")

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Báo Long An</title><link>http://127.0.0.1/</link><language>vi</language>
<item><guid isPermaLink="false">tin-1</guid><title>Lịch cắt điện</title><description>&lt;p&gt;Điện lực &lt;b&gt;Tân An&lt;/b&gt; cắt điện
 ngày 12/10.&lt;/p&gt;</description><pubDate>Mon, 12 Oct 2026 07:00:00 +0700</pubDate></item>
<item><guid>tin-2</guid><title>Tiêm chủng</title><description>Trạm y tế xã tiêm chủng.</description></item>
</channel></rss>"""

TAN_AN = "10.50,106.38 10.50,106.44 10.56,106.44 10.56,106.38 10.50,106.38"  # a box around Tân An


SENT = datetime.now(timezone(timedelta(hours=7))).replace(microsecond=0)


def cap(identifier: str, msg_type: str = "Alert", references: str = "", headline: str = "Bão số 3") -> bytes:
    refs = f"<references>{references},{SENT.isoformat()}</references>" if references else ""
    sent, expires = SENT.isoformat(), (SENT + timedelta(days=1)).isoformat()
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>kttv@example.vn</sender><sent>{sent}</sent>
  <status>Actual</status><msgType>{msg_type}</msgType><scope>Public</scope>{refs}
  <info><language>vi-VN</language><category>Met</category><event>Bão</event><urgency>Immediate</urgency>
    <severity>Extreme</severity><certainty>Observed</certainty><expires>{expires}</expires>
    <headline>{headline}</headline><description>Bão số 3 đổ bộ vào Tân An.</description>
    <instruction>Bà con vào nơi trú ẩn an toàn.</instruction>
    <area><areaDesc>Thành phố Tân An</areaDesc><polygon>{TAN_AN}</polygon></area></info>
</alert>""".encode()


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def src(hub: Runtime, tmp_path: Path) -> Iterator[Runtime]:
    hub.settings.sources_file = str(tmp_path / "sources.yaml")
    hub.settings.source_tick_s = 0.05
    write_sources(Path(hub.settings.sources_file))
    yield hub
    clean_sources_queue(hub)


def contents_of(rt: Runtime, source: str) -> dict[str, Content]:
    with rt.db.session() as s:
        return {c.external_id: c for c in s.scalars(select(Content).where(Content.source == source))}


def test_an_rss_source_added_to_the_file_yields_drafts_and_broken_feeds_only_mark_their_health(
        src: Runtime, feed: FeedServer) -> None:
    feed.answer("/tin.rss", 200, RSS.encode())
    feed.answer("/bad.rss", 200, b"<rss><channel><title>cut off")
    feed.answer("/slow.rss", 200, RSS.encode(), delay=scaled(5))
    poller, stop = Poller(src), threading.Event()
    with WorkerThreads(src, 2, queues=[src.queue("sources")]):
        ticker = threading.Thread(target=poller.run, args=(stop,), daemon=True)
        ticker.start()
        try:
            rss = {"plugin": "rss", "interval_s": 60, "area_code": "80"}
            write_sources(Path(src.settings.sources_file),  # no restart: the running poller reads the file
                          {"name": "gone", **rss, "url": feed.url("/gone.rss")},
                          {"name": "bad", **rss, "url": feed.url("/bad.rss")},
                          {"name": "slow", **rss, "url": feed.url("/slow.rss"), "timeout_s": 1},
                          {"name": "bao", **rss, "url": feed.url("/tin.rss")})
            assert wait_until(lambda: len(contents_of(src, "bao")) == 2, scaled(20)), status_of(src, "bao")
            assert wait_until(lambda: (st := status_of(src, "bao")) is not None and st.last_success_at, scaled(5))
            assert wait_until(lambda: all((st := status_of(src, n)) is not None and st.failures
                                          for n in ("gone", "bad", "slow")), scaled(20))
        finally:
            stop.set()
            ticker.join(10)
    found = contents_of(src, "bao")
    assert {c.status for c in found.values()} == {"draft"}, found
    assert found["tin-1"].body == "Điện lực Tân An cắt điện ngày 12/10." and found["tin-1"].area_code == "80"
    assert "HTTP 404" in status_of(src, "gone").last_error
    assert "bad" in status_of(src, "bad").last_error or "XML" in status_of(src, "bad").last_error
    assert "timed out" in status_of(src, "slow").last_error
    good = status_of(src, "bao")
    assert good.failures == 0 and good.items_fetched == 2 and good.last_error is None


def test_a_cap_polygon_reaches_exactly_the_speakers_inside_and_a_cancel_sends_nothing(
        src: Runtime, feed: FeedServer) -> None:
    inside = {"ok-in1": (10.53, 106.41), "ok-in2": (10.55, 106.39)}
    outside = {"ok-out1": (10.60, 106.41), "ok-out2": (10.53, 106.50)}
    for address, (lat, lon) in {**inside, **outside}.items():
        dispatch.add(src, address, area="27694", latitude=lat, longitude=lon)
    dispatch.add(src, "ok-nowhere", area="27694")  # no coordinates: never inside a shape
    cfg = parse_entry({"name": "kttv", "plugin": "cap", "url": feed.url("/cap.xml"), "interval_s": 60,
                       "area_code": "80", "emergency": "dispatch"}, "sources.yaml: source", src.plugins)
    feed.answer("/cap.xml", 200, cap("bao-3"))
    first = poll(src, cfg)
    assert first.ok and len(first.intake.dispatched) == 1, first
    alert = contents_of(src, "kttv")["kttv@example.vn,bao-3"]
    assert (alert.status, alert.priority, alert.title) == ("published", "emergency", "Bão số 3")
    dispatch.work(src)
    with src.db.session() as s:
        reached = {d.device_id: d.state for d in s.scalars(select(Delivery).where(
            Delivery.command_id == first.intake.dispatched[0]))}
    assert reached == {a.upper(): "acked" for a in inside}

    feed.answer("/cap.xml", 200, cap("bao-3-u", "Update", "kttv@example.vn,bao-3",
                                     headline="Bão số 3 (cập nhật)"))
    assert poll(src, cfg).ok
    found = contents_of(src, "kttv")
    assert found["kttv@example.vn,bao-3"].status == "archived"
    assert found["kttv@example.vn,bao-3-u"].title == "Bão số 3 (cập nhật)"

    with src.db.session() as s:
        commands = len(s.scalars(select(Command)).all())
    feed.answer("/cap.xml", 200, cap("bao-3-c", "Cancel", "kttv@example.vn,bao-3-u"))
    cancelled = poll(src, cfg)
    assert cancelled.ok and not cancelled.intake.dispatched and not cancelled.intake.created
    found = contents_of(src, "kttv")
    assert "kttv@example.vn,bao-3-c" not in found  # a Cancel is never a content, never a broadcast
    assert found["kttv@example.vn,bao-3-u"].status == "archived"
    with src.db.session() as s:
        assert len(s.scalars(select(Command)).all()) == commands


def test_a_cap_emergency_for_places_not_here_is_kept_unplaced_and_not_broadcast(src: Runtime,
                                                                                 feed: FeedServer) -> None:
    dispatch.add(src, "ok-1", area="27694", latitude=10.53, longitude=106.41)
    cfg = parse_entry({"name": "noaa", "plugin": "cap", "url": feed.url("/cap.xml"), "interval_s": 60,
                       "area_code": "80", "emergency": "dispatch"}, "sources.yaml: source", src.plugins)
    other = cap("tx-1").replace(f"<polygon>{TAN_AN}</polygon>".encode(),
                                b"<geocode><valueName>SAME</valueName><value>006037</value></geocode>")
    feed.answer("/cap.xml", 200, other)
    outcome = poll(src, cfg)
    assert outcome.ok and outcome.intake.unplaced == ["kttv@example.vn,tx-1"] and not outcome.intake.dispatched
    kept = contents_of(src, "noaa")["kttv@example.vn,tx-1"]
    assert kept.status == "draft" and kept.origin["unplaced"] is True  # kept and reported, never widened
    assert kept.geography["unresolved_areas"] == ["Thành phố Tân An"]


def test_what_a_cap_fetch_passed_over_shows_in_the_sources_health(src: Runtime, feed: FeedServer) -> None:
    from hub.content.sources import describe

    src.settings.sources_file = ""
    cfg = parse_entry({"name": "kttv", "plugin": "cap", "url": feed.url("/cap.xml"), "interval_s": 60,
                       "area_code": "80"}, "sources.yaml: source", src.plugins)
    feed.answer("/cap.xml", 200, cap("ack-1", "Ack", "kttv@example.vn,bao-3"))
    outcome = poll(src, cfg)
    assert outcome.ok and outcome.items == 0 and not contents_of(src, "kttv")
    health = status_of(src, "kttv")
    assert len(health.notes) == 1 and "Ack" in health.notes[0], health.notes
    assert [r["health"]["notes"] for r in describe(src)["sources"] if r["name"] == "kttv"] == [health.notes]


def test_content_published_on_one_hub_appears_on_the_other_once(src: Runtime, tmp_path: Path) -> None:
    from hub.config import load_settings
    from hub.plugins import Plugins

    origin_dir = tmp_path / "origin"
    origin_dir.mkdir()
    cfg_file = origin_dir / "hub.yaml"
    cfg_file.write_text(yaml.safe_dump({"database_url": f"sqlite:///{origin_dir / 'hub.sqlite3'}",
                                        "redis_url": src.settings.redis_url, "queue": f"{src.settings.queue}-o",
                                        "state_dir": str(origin_dir), "hub_name": "tinh-ben-tre"}))
    plugins = Plugins()
    plugins.load_entry_points()
    origin = Runtime(load_settings({"HUB_CONFIG": str(cfg_file)}), plugins=plugins)
    origin.db.create()
    admin = Actor(name="tinh-admin", roles=frozenset({"administrator"}))
    try:
        app = create_app(origin, authenticator=lambda _req: admin)
        client = app.test_client()
        published = client.post("/api/contents", json={"title": "Bão số 3 vào Bến Tre", "kind": "led_text",
                                                       "body": "Bão số 3 đổ bộ.", "publish": True}).get_json()
        draft = client.post("/api/contents", json={"title": "Bản nháp", "kind": "led_text", "body": "Chưa duyệt."})
        assert draft.status_code == 201
        with serve(app) as base:
            follow = parse_entry({"name": "ben-tre", "plugin": "hub_follow", "base_url": base, "token": "t",
                                  "interval_s": 30, "area_code": "80"}, "sources.yaml: source", src.plugins)
            # the feed holds back what was published in its last 2 s (a commit may still be on its way)
            outcomes = []
            assert wait_until(lambda: outcomes.append(poll(src, follow)) or contents_of(src, "ben-tre"),
                              scaled(10)), outcomes[-1]
            again = poll(src, follow)
        assert again.ok and not again.intake.created, again
        got = contents_of(src, "ben-tre")
        assert list(got) == [f"tinh-ben-tre:{published['id']}"]  # once, and never the draft
        assert got[f"tinh-ben-tre:{published['id']}"].title == "Bão số 3 vào Bến Tre"
    finally:
        origin.close()
