"""Fetching over HTTP from a loopback server: an Atom/RSS index of alerts, one alert, failures."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hub.source import SourceError, checked_items

from hub_source_cap.plugin import CapSource

from cap_source_helpers import (Identity, alert_xml, atom_index, http_server, info_xml, make_identity, rss_index,
                                sign)

REF = "canhbao@kttv.gov.vn,VN-KTTV-2026-001,2026-12-05T08:00:00+07:00"


def source(url: str, **config: object) -> CapSource:
    return CapSource.configured({"url": url, "timeout_s": 2, **config})


def test_atom_index_of_two_alerts_yields_two_items() -> None:
    with http_server() as served:
        served.add("/a/1.xml", alert_xml())
        served.add("/a/2.xml", alert_xml(identifier="VN-KTTV-2026-002", sent="2026-12-05T09:00:00+07:00",
                                         msg_type="Update", references=REF))
        index = served.add("/index.atom", atom_index([("/a/2.xml", "2026-12-05T09:00:00+07:00"),
                                                      ("a/1.xml", "2026-12-05T08:00:00+07:00")]),
                           "application/atom+xml")
        items = checked_items("cap", source(index).fetch(None))
    # oldest first: the update comes after the alert it replaces
    assert [i.external_id for i in items] == ["canhbao@kttv.gov.vn,VN-KTTV-2026-001",
                                              "canhbao@kttv.gov.vn,VN-KTTV-2026-002"]
    assert items[1].replaces == (items[0].external_id,)
    assert items[0].raw["source_url"] == served.url("/a/1.xml")
    assert items[0].severity == "emergency" and items[0].area_codes == ("00097",)


def test_since_skips_entries_the_index_dates_earlier() -> None:
    with http_server() as served:
        served.add("/1.xml", alert_xml())
        served.add("/2.xml", alert_xml(identifier="LATER"))
        index = served.add("/i", atom_index([("/1.xml", "2026-12-05T08:00:00+07:00"),
                                             ("/2.xml", "2026-12-05T10:00:00+07:00")]), "application/atom+xml")
        since = datetime(2026, 12, 5, 9, 0, tzinfo=timezone(timedelta(hours=7)))
        items = source(index).fetch(since)
        assert [i.external_id for i in items] == ["canhbao@kttv.gov.vn,LATER"]
        assert "/1.xml" not in served.requests


def test_rss_index_and_a_single_alert_url() -> None:
    with http_server() as served:
        one = served.add("/1.xml", alert_xml())
        served.add("/rss", rss_index([one]), "application/rss+xml")
        assert len(source(served.url("/rss")).fetch(None)) == 1
        assert source(one).fetch(None)[0].title == "Cảnh báo bão số 3 đổ bộ"


def test_a_refused_alert_in_an_index_is_a_note_and_the_others_come_in() -> None:
    with http_server() as served:
        served.add("/good.xml", alert_xml())
        served.add("/bad.xml", alert_xml(identifier="BAD", msg_type="Nonsense"))
        served.add("/ack.xml", alert_xml(identifier="ACK", msg_type="Ack", infos=[]))
        src = source(served.add("/i", atom_index([("/good.xml", "2026-12-05T08:00:00+07:00"),
                                                  ("/bad.xml", "2026-12-05T08:00:00+07:00"),
                                                  ("/ack.xml", "2026-12-05T08:00:00+07:00")])))
        items = src.fetch(None)
    assert [i.external_id.split(",")[1] for i in items] == ["VN-KTTV-2026-001"]
    assert any("bad.xml: line" in n and "Nonsense" in n for n in src.last_notes)
    assert any("Ack" in n for n in src.last_notes)


def test_the_number_of_alerts_per_fetch_is_capped() -> None:
    with http_server() as served:
        entries = []
        for n in range(5):
            served.add(f"/{n}.xml", alert_xml(identifier=f"A{n}"))
            entries.append((f"/{n}.xml", "2026-12-05T08:00:00+07:00"))
        src = source(served.add("/i", atom_index(entries)), max_alerts=2)
        assert len(src.fetch(None)) == 2
        assert sum(r.endswith(".xml") for r in served.requests) == 2
        assert any("max_alerts" in n for n in src.last_notes)


def test_index_links_that_are_not_http_are_never_followed() -> None:
    with http_server() as served:
        served.add("/1.xml", alert_xml())
        src = source(served.add("/i", atom_index([("file:///etc/passwd", "2026-12-05T08:00:00+07:00"),
                                                  ("/1.xml", "2026-12-05T08:00:00+07:00")])))
        items = src.fetch(None)
    assert len(items) == 1 and "root:" not in repr(items[0].raw)
    assert any("file:///etc/passwd" in n and "only http:// and https://" in n for n in src.last_notes)


def test_http_errors_and_timeouts_say_whether_a_retry_may_help() -> None:
    with http_server() as served:
        with pytest.raises(SourceError, match="HTTP 404") as exc:
            source(served.url("/missing")).fetch(None)
        assert exc.value.transient is False
        served.add("/busy", b"try later", "text/plain", status=503)
        with pytest.raises(SourceError, match="HTTP 503") as exc:
            source(served.url("/busy")).fetch(None)
        assert exc.value.transient is True
        served.add("/slow", alert_xml())
        served.delay_s = 1.5
        with pytest.raises(SourceError) as exc:
            source(served.url("/slow"), timeout_s=0.3).fetch(None)
        assert exc.value.transient is True
        free_port = served.port
    with pytest.raises(SourceError, match="cannot reach") as exc:
        source(f"http://127.0.0.1:{free_port}/gone").fetch(None)  # the server has stopped: refused
    assert exc.value.transient is True


def test_a_refused_single_alert_is_not_transient_and_an_index_of_only_unreachable_alerts_is() -> None:
    with http_server() as served:
        served.add("/bad.xml", b"<alert>")
        with pytest.raises(SourceError, match="line 1: not well-formed") as exc:
            source(served.url("/bad.xml")).fetch(None)
        assert exc.value.transient is False
        served.add("/down.xml", b"", status=502)
        with pytest.raises(SourceError, match="none of the 1 alerts could be fetched") as exc:
            source(served.add("/i", atom_index([("/down.xml", "2026-12-05T08:00:00+07:00")]))).fetch(None)
        assert exc.value.transient is True


def test_test_reports_reachability_and_validity() -> None:
    with http_server() as served:
        check = source(served.add("/1.xml", alert_xml())).test()
        assert check.ok and check.sample[0].external_id.endswith("VN-KTTV-2026-001")
        served.add("/html", b"<html><body>hi</body></html>", "text/html")
        check = source(served.url("/html")).test()
        assert not check.ok and "not a CAP alert, an Atom feed or an RSS feed" in check.detail
        assert "HTTP 404" in source(served.url("/nope")).test().detail


def test_signatures_survive_the_trip_over_http_and_are_required() -> None:
    trusted: Identity = make_identity("KTTV")
    with http_server() as served:
        served.add("/signed.xml", sign(alert_xml(infos=[info_xml()]), trusted))
        served.add("/unsigned.xml", alert_xml(identifier="UNSIGNED"))
        src = source(served.add("/i", atom_index([("/signed.xml", "2026-12-05T08:00:00+07:00"),
                                                  ("/unsigned.xml", "2026-12-05T08:00:00+07:00")])),
                     require_signature=True, trusted_certificates=[trusted.cert_pem])
        items = src.fetch(None)
    assert [i.raw["signature"]["verified"] for i in items] == [True]
    assert any("not signed" in n for n in src.last_notes)
