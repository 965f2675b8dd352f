"""What an editor gets from a working feed: plain Vietnamese text, stable ids, attachments, dates."""
from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta, timezone

from hub.plugins import Plugins
from hub.source import SourceItem, checked_items

from hub_source_rss.plugin import RssSource
from rss_helpers import DATA, FeedServer

ICT = timezone(timedelta(hours=7))


def _source(url: str, **config: object) -> RssSource:
    return RssSource.configured({"url": url, "timeout_s": 5, **config})


def _by_id(items: list[SourceItem]) -> dict[str, SourceItem]:
    return {i.external_id: i for i in items}


def test_rss_items_are_plain_text_with_ids_dates_language_and_audio(feeds: FeedServer) -> None:
    items = checked_items("rss", _source(feeds.serve("/rss", "rss20.xml")).fetch(None))
    assert len(items) == 3
    storm = items[0]
    assert storm.external_id == "lan-2025-0901-bao3"  # the guid
    assert storm.title == "Bão số 3 gần bờ"  # markup in a title is not read aloud
    assert storm.text == "Chiều nay, bão số 3 đổ bộ vào đất liền.\n\nNgười dân cần\nchằng chống nhà cửa."
    assert "alert" not in storm.text and "color" not in storm.text  # script and style dropped
    assert storm.published_at == datetime(2025, 9, 1, 10, 0, tzinfo=ICT)
    assert storm.published_at.utcoffset() is not None
    assert storm.language == "vi-VN"
    assert storm.category == "Thời tiết"
    assert storm.url == "http://example.invalid/tin/bao-so-3"
    assert [(a.url, a.media_type, a.size) for a in storm.attachments] == [
        ("http://example.invalid/audio/bao3.mp3", "audio/mpeg", 123456)]
    vaccination, power_cut = items[1], items[2]
    assert vaccination.external_id == "http://example.invalid/tin/tiem-chung"  # no guid: the link
    assert vaccination.attachments == ()  # a file:// enclosure is never passed on for the hub to fetch
    assert power_cut.external_id.startswith("sha256:")  # neither guid nor link: title and date


def test_atom_entries_with_relative_links_categories_and_per_entry_language(feeds: FeedServer) -> None:
    url = feeds.serve("/atom", "atom.xml", content_type="application/atom+xml")
    meeting, water = _source(url).fetch(None)
    assert meeting.external_id == "tag:xa.example.invalid,2025:hop-dan"
    assert meeting.title == "Họp dân & lấy ý kiến"
    assert meeting.text == "Thông báo\n\nMời bà con dự họp lúc 19 giờ.\n\nNhà văn hóa ấp 1\n\nNhà văn hóa ấp 2"
    assert meeting.url == feeds.url("/tin/hop-dan")  # resolved against the feed's own URL
    assert meeting.category == "Chính quyền"
    assert meeting.language == "vi"
    assert meeting.published_at == datetime(2025, 9, 2, 1, 0, tzinfo=timezone.utc)
    assert [a.url for a in meeting.attachments] == ["http://example.invalid/audio/hop-dan.mp3"]
    assert water.language == "en" and water.text == "Water is off on Tuesday."
    assert water.published_at == datetime(2025, 9, 1, 12, 0, tzinfo=timezone.utc)  # only <updated>


def test_ids_stay_the_same_across_fetches_so_the_hub_keeps_one_record(feeds: FeedServer) -> None:
    source = _source(feeds.serve("/rss", "rss20.xml"), conditional_get=False)
    first, second = source.fetch(None), _source(feeds.url("/rss")).fetch(None)
    assert [i.external_id for i in first] == [i.external_id for i in second]
    assert _by_id(first) == _by_id(second)


def test_decomposed_vietnamese_becomes_composed(feeds: FeedServer) -> None:
    raw = (DATA / "nfd.xml").read_text(encoding="utf-8")
    assert not unicodedata.is_normalized("NFC", raw)  # the fixture really is decomposed
    (item,) = _source(feeds.serve("/nfd", "nfd.xml")).fetch(None)
    assert item.title == "Thông báo khẩn: nước lũ dâng cao ở xã Tân Thạnh"
    assert item.text == "Ủy ban nhân dân xã đề nghị người dân di chuyển đồ đạc lên cao."
    assert unicodedata.is_normalized("NFC", item.title) and unicodedata.is_normalized("NFC", item.text)


def test_unchanged_feed_answers_304_and_fetch_returns_nothing(feeds: FeedServer) -> None:
    url = feeds.serve("/rss", "rss20.xml", etag='"v1"', last_modified="Mon, 01 Sep 2025 03:00:00 GMT")
    source = _source(url)
    assert len(source.fetch(None)) == 3
    assert source.fetch(None) == []
    assert feeds.requests[1][1]["if-none-match"] == '"v1"'
    assert feeds.requests[1][1]["if-modified-since"] == "Mon, 01 Sep 2025 03:00:00 GMT"
    feeds.serve("/rss", "atom.xml", etag='"v2"')  # the feed changed: a full answer again
    assert [i.title for i in source.fetch(None)][1] == "Water supply notice"


def test_test_reads_unconditionally_and_shows_a_sample(feeds: FeedServer) -> None:
    url = feeds.serve("/rss", "rss20.xml", etag='"v1"')
    source = _source(url)
    source.fetch(None)
    check = source.test()
    assert check.ok, check.detail
    assert check.detail == "Báo Long An - Thời sự: 3 items (rss20)"
    assert [i.external_id for i in check.sample][0] == "lan-2025-0901-bao3"
    assert "if-none-match" not in feeds.requests[-1][1]


def test_gzip_headers_and_max_items(feeds: FeedServer) -> None:
    url = feeds.serve("/rss", "rss20.xml", gzip=True)
    items = _source(url, max_items=2, headers={"User-Agent": "tinh-long-an-hub"}).fetch(None)
    assert len(items) == 2
    assert feeds.requests[0][1]["user-agent"] == "tinh-long-an-hub"


def test_a_configuration_given_directly_gets_the_defaults(feeds: FeedServer) -> None:
    assert len(RssSource({"url": feeds.serve("/rss", "rss20.xml")}).fetch(None)) == 3


def test_the_hub_finds_the_plugin_by_its_entry_point() -> None:
    plugins = Plugins()
    plugins.load_entry_points({"rss"})
    assert plugins.source("rss") is RssSource
    assert not [p for p in plugins.problems if "rss" in p]
