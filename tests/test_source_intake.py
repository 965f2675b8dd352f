"""What a source's items do to contents: one record per item, versions when the source edits it,
replacements, withdrawals that stop what was going to play and send nothing, exercises and items
for elsewhere that no source publishes, and emergencies dispatched at once when so configured."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.content.intake import target_for
from hub.content.polling import poll
from hub.content.source_config import SourceConfig, parse_entry
from hub.runtime import Runtime
from hub.store.content_tables import ContentVersion
from hub.store.db import utcnow
from hub.store.models import AuditEntry, Command, Content, Delivery
from tests.support import dispatch
from tests.support.feed_server import FeedServer
from tests.support.sources import SOURCE_KINDS, clean_sources_queue, entry, item, register_json_feed


@pytest.fixture
def src(hub: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.syspath_prepend(str(SOURCE_KINDS))
    register_json_feed(hub.plugins)
    yield hub
    clean_sources_queue(hub)


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def source(rt: Runtime, feed: FeedServer, **extra: Any) -> SourceConfig:
    return parse_entry(entry("tin", feed.url("/tin.json"), **extra), "sources.yaml: source", rt.plugins)


def serve_and_poll(rt: Runtime, feed: FeedServer, cfg: SourceConfig, *items: dict[str, Any]) -> Any:
    feed.items("/tin.json", list(items))
    outcome = poll(rt, cfg)
    assert outcome.ok, outcome.error
    return outcome.intake


def by_item(rt: Runtime) -> dict[str, Content]:
    with rt.db.session() as s:
        return {c.external_id: c for c in s.scalars(select(Content).where(Content.source == "tin"))}


def count(rt: Runtime, model: type) -> int:
    with rt.db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_an_item_seen_twice_is_one_content(src: Runtime, feed: FeedServer) -> None:
    cfg = source(src, feed)
    serve_and_poll(src, feed, cfg, item("a1", "Một"), item("a2", "Hai"))
    again = serve_and_poll(src, feed, cfg, item("a1", "Một"), item("a2", "Hai"))
    assert again.unchanged == 2 and not again.created
    assert sorted(by_item(src)) == ["a1", "a2"]


def test_an_item_changed_at_its_source_makes_a_new_version(src: Runtime, feed: FeedServer) -> None:
    cfg = source(src, feed)
    serve_and_poll(src, feed, cfg, item("a1", "Một", severity="priority"))
    serve_and_poll(src, feed, cfg, item("a1", "Một", severity="priority", text="Nội dung đã sửa"))
    content = by_item(src)["a1"]
    assert (content.version, content.body, content.status, content.priority) == (2, "Nội dung đã sửa", "draft",
                                                                                  "priority")
    with src.db.session() as s:
        versions = list(s.scalars(select(ContentVersion).where(ContentVersion.content_id == content.id)
                                  .order_by(ContentVersion.version)))
    assert [(v.version, v.changed_by) for v in versions] == [(1, "source:tin"), (2, "source:tin")]
    assert versions[1].changes == {"body": ["Nội dung Một", "Nội dung đã sửa"]}


def test_a_published_content_edited_at_its_source_follows_auto_publish(src: Runtime, feed: FeedServer) -> None:
    auto = source(src, feed, auto_publish=True)
    serve_and_poll(src, feed, auto, item("a1", "Một"))
    assert by_item(src)["a1"].status == "published"
    serve_and_poll(src, feed, auto, item("a1", "Một", text="Sửa lần 1"))
    assert by_item(src)["a1"].status == "published"
    manual = source(src, feed)  # the same source, auto_publish turned off in the file
    serve_and_poll(src, feed, manual, item("a1", "Một", text="Sửa lần 2"))
    assert by_item(src)["a1"].status == "draft"  # changed text waits for an editor again


def test_a_replacement_archives_what_it_replaces_and_takes_its_place(src: Runtime, feed: FeedServer) -> None:
    cfg = source(src, feed)
    serve_and_poll(src, feed, cfg, item("a1", "Bão số 3"))
    serve_and_poll(src, feed, cfg, item("a1", "Bão số 3"), item("a1-u", "Bão số 3 (cập nhật)", replaces=["a1"]))
    found = by_item(src)
    assert (found["a1"].status, found["a1"].reason) == ("archived", "replaced by a1-u from source tin")
    assert found["a1-u"].status == "draft"


def test_a_withdrawal_archives_cancels_what_would_play_it_and_sends_nothing(src: Runtime, feed: FeedServer) -> None:
    dispatch.add(src, "spk-1", area="27694")
    cfg = source(src, feed, auto_publish=True)
    serve_and_poll(src, feed, cfg, item("a1", "Lịch phát"))
    content = by_item(src)["a1"]
    later = dispatch.send(src, {"verb": "play", "content_id": content.id, "target": {"areas": ["80"]},
                                "start_at": (utcnow() + timedelta(hours=1)).isoformat()})
    commands_before = count(src, Command)
    result = serve_and_poll(src, feed, cfg, item("a1", "Lịch phát"), item("c1", "Hủy", withdraws=["a1"]))
    found = by_item(src)
    assert set(found) == {"a1"}  # the withdrawal itself is never a content
    assert found["a1"].status == "archived" and found["a1"].reason.startswith("withdrawn by source tin")
    assert count(src, Command) == commands_before and not result.dispatched
    with src.db.session() as s:
        cmd = s.get(Command, later.command.id)
        states = {d.state for d in s.scalars(select(Delivery).where(Delivery.command_id == cmd.id))}
    assert cmd.cancelled_by == "source:tin" and states == {"superseded"}


def test_exercises_are_never_published_unless_the_source_allows(src: Runtime, feed: FeedServer) -> None:
    serve_and_poll(src, feed, source(src, feed, auto_publish=True), item("x1", "Diễn tập", exercise=True),
                   item("n1", "Tin thường"))
    found = by_item(src)
    assert (found["x1"].status, found["x1"].origin.get("exercise")) == ("draft", True)
    assert found["n1"].status == "published" and found["n1"].published_by == "source:tin"
    serve_and_poll(src, feed, source(src, feed, auto_publish=True, allow_exercise=True),
                   item("x2", "Diễn tập 2", exercise=True))
    assert by_item(src)["x2"].status == "published"


def test_an_item_for_areas_outside_the_province_is_kept_flagged_and_not_published(
        src: Runtime, feed: FeedServer) -> None:
    result = serve_and_poll(src, feed, source(src, feed, auto_publish=True),
                            item("far", "Tỉnh khác", area_codes=["01", "001"]),
                            item("near", "Huyện", area_codes=["99", "807", "28099"]))
    found = by_item(src)
    far = found["far"]
    assert result.unplaced == ["far"] and far.origin["unplaced"] is True
    assert (far.area_code, far.status, far.geography["area_codes"]) == ("80", "draft", ["01", "001"])
    near = found["near"]  # the most specific area it names that exists here
    assert near.area_code == "28099" and near.geography["matched_areas"] == ["807", "28099"]
    with src.db.session() as s:
        entry_ = s.scalars(select(AuditEntry).where(AuditEntry.object_id == far.id,
                                                    AuditEntry.action == "content.create")).one()
    assert entry_.actor == "source:tin" and entry_.detail["unplaced"] is True


def test_an_item_already_expired_is_kept_but_never_published_nor_played(src: Runtime, feed: FeedServer) -> None:
    dispatch.add(src, "spk-1", area="27694")
    late = item("old", "Lũ quét (đã qua)", severity="emergency", area_codes=["794"],
                published_at="2026-07-01T07:00:00+07:00", expires_at="2026-07-01T19:00:00+07:00")
    result = serve_and_poll(src, feed, source(src, feed, auto_publish=True, emergency="dispatch"), late)
    assert by_item(src)["old"].status == "draft" and not result.dispatched and not result.errors


def test_an_emergency_is_dispatched_at_once_only_when_the_source_says_so(src: Runtime, feed: FeedServer) -> None:
    dispatch.add(src, "spk-1", area="27694")
    alert = item("e1", "Lũ quét", severity="emergency", area_codes=["794"],
                 expires_at="2099-07-01T19:00:00+07:00")
    waits = serve_and_poll(src, feed, source(src, feed, auto_publish=True), alert)
    assert by_item(src)["e1"].status == "draft" and not waits.dispatched  # emergency: draft awaits approval
    alert2 = {**alert, "external_id": "e2"}
    sent = serve_and_poll(src, feed, source(src, feed, emergency="dispatch"), alert2)
    e2 = by_item(src)["e2"]
    assert (e2.status, e2.priority, e2.valid_until.year) == ("published", "emergency", 2099)
    assert len(sent.dispatched) == 1 and target_for(e2) == {"areas": ["794"]}
    with src.db.session() as s:
        cmd = s.get(Command, sent.dispatched[0])
        assert (cmd.verb, cmd.content_id, cmd.issuer, cmd.priority, cmd.target["areas"]) == (
            "play", e2.id, "source:tin", "emergency", ["794"])
        assert [d.device_id for d in s.scalars(select(Delivery).where(Delivery.command_id == cmd.id))] == ["SPK-1"]
