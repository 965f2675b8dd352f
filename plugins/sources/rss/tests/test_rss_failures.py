"""A broken feed is named in test() and raises a SourceError fetch() callers can act on."""
from __future__ import annotations

import time

import pytest

from hub.source import SourceError

from hub_source_rss.plugin import RssSource
from rss_helpers import FeedServer


def _source(url: str, **config: object) -> RssSource:
    return RssSource.configured({"url": url, "timeout_s": 5, **config})


def test_404_is_named_and_not_worth_retrying(feeds: FeedServer) -> None:
    url = feeds.url("/missing.xml")
    check = _source(url).test()
    assert not check.ok and check.detail == f"HTTP 404 from {url}"
    with pytest.raises(SourceError, match="HTTP 404") as caught:
        _source(url).fetch(None)
    assert caught.value.transient is False


def test_server_error_is_worth_retrying(feeds: FeedServer) -> None:
    url = feeds.serve("/rss", body=b"oops", status=503)
    with pytest.raises(SourceError, match="HTTP 503") as caught:
        _source(url).fetch(None)
    assert caught.value.transient is True


def test_invalid_xml_names_the_line_and_reason(feeds: FeedServer) -> None:
    url = feeds.serve("/rss", "invalid.xml")
    check = _source(url).test()
    assert not check.ok
    assert check.detail.startswith(f"{url} is not well-formed XML: line 9")
    assert "mismatched tag" in check.detail
    with pytest.raises(SourceError, match="not well-formed XML") as caught:
        _source(url).fetch(None)
    assert caught.value.transient is False
    assert _source(url, accept_malformed=True).test().ok  # a province may choose the lenient reading


def test_a_web_page_is_not_a_feed(feeds: FeedServer) -> None:
    url = feeds.serve("/", "not_a_feed.html", content_type="text/html; charset=utf-8")
    check = _source(url).test()
    assert not check.ok and "is not an RSS or Atom feed" in check.detail
    with pytest.raises(SourceError, match="not an RSS or Atom feed"):
        _source(url, accept_malformed=True).fetch(None)


def test_a_server_that_never_answers_times_out(feeds: FeedServer) -> None:
    url = feeds.serve("/slow", hang=True)
    started = time.monotonic()
    check = _source(url, timeout_s=0.5).test()
    assert time.monotonic() - started < 5
    assert not check.ok and check.detail == f"timed out after 0.5 s waiting for {url}"
    with pytest.raises(SourceError, match="timed out") as caught:
        _source(url, timeout_s=0.5).fetch(None)
    assert caught.value.transient is True


def test_nothing_listening_is_transient(feeds: FeedServer) -> None:
    url = feeds.url("/rss")
    feeds.stop()
    with pytest.raises(SourceError, match="cannot reach") as caught:
        _source(url).fetch(None)
    assert caught.value.transient is True


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.invalid/feed.xml", "feed.xml"])
def test_only_web_urls_are_read(url: str) -> None:
    with pytest.raises(SourceError, match="is not an http:// or https:// URL"):
        RssSource.configured({"url": url})
    check = RssSource({"url": url}).test()  # a configuration that skipped the schema is refused too
    assert not check.ok and "is not an http:// or https:// URL" in check.detail


def test_a_redirect_is_followed_but_never_to_a_file_url(feeds: FeedServer) -> None:
    feeds.serve("/rss", "rss20.xml")
    assert len(_source(feeds.serve("/moved", status=301, location=feeds.url("/rss"))).fetch(None)) == 3
    url = feeds.serve("/trap", status=302, location="file:///etc/passwd")
    check = _source(url).test()
    assert not check.ok and check.detail == f"{url} redirects to file:///etc/passwd, which is not http(s); refused"


def test_unknown_settings_are_refused_by_name() -> None:
    with pytest.raises(SourceError, match="intervall"):
        RssSource.configured({"url": "http://127.0.0.1/feed", "intervall": 5})
