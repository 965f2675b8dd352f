"""Pulling bulletins: paging, field mapping, severity classes, authentication."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from hub.plugins import Plugins
from hub.source import SourceError, checked_items

from hub_source_national.plugin import NationalSource
from hub_source_national.simulator import Simulator, sample_items
from national_helpers import config_for

ICT = timezone(timedelta(hours=7))


def _source(sim: Simulator, **overrides: Any) -> NationalSource:
    return NationalSource.configured(config_for(sim, **overrides))


def _list_requests(sim: Simulator) -> list[str]:
    return [path for method, path in sim.requests if method == "GET"]


@pytest.mark.parametrize("paging", [
    {"mode": "page", "items_field": "data", "page_size": 3},
    {"mode": "cursor", "items_field": "data", "next_field": "next_cursor"},
    {"mode": "next_link", "items_field": "data", "next_field": "next"},
])
def test_all_three_pages_are_read(sim: Simulator, paging: dict[str, Any]) -> None:
    query = {} if paging["mode"] == "page" else {"size": 3}  # the server's own size parameter
    items = checked_items("national", _source(sim, paging=paging, query=query).fetch(None))
    assert [i.external_id for i in items] == [f"SIM-{n:04d}" for n in range(1, 8)]
    assert len(_list_requests(sim)) == 3  # 3 + 3 + 1 items


def test_page_mode_sends_page_and_size(sim: Simulator) -> None:
    _source(sim).fetch(None)
    assert _list_requests(sim) == [f"/api/v1/bulletins?size=3&page={n}" for n in (1, 2, 3)]


def test_max_pages_bounds_a_poll(sim: Simulator) -> None:
    items = _source(sim, paging={"mode": "page", "items_field": "data", "page_size": 3, "max_pages": 2}).fetch(None)
    assert len(items) == 6


def test_fields_are_mapped_by_dotted_paths(sim: Simulator) -> None:
    first = _source(sim).fetch(None)[0]
    assert first.title == "Bản tin số 1: thông báo của tỉnh"
    assert first.text == "Nội dung bản tin số 1. Đề nghị bà con theo dõi."
    assert first.published_at == datetime(2025, 9, 1, 7, 0, tzinfo=ICT)
    assert first.area_codes == ("80", "80001")
    assert first.category == "Y tế"
    assert first.language == "vi"
    assert [(a.url, a.media_type) for a in first.attachments] == [(f"{sim.url}/media/sim-0001.mp3", "audio/mpeg")]
    assert first.raw == sample_items(1)[0]


def test_severity_values_map_to_the_hubs_three_classes(sim: Simulator) -> None:
    by_level = {i.raw["level"]: i.severity for i in _source(sim).fetch(None)}
    assert by_level == {1: "normal", 2: "priority", 3: "emergency"}
    unmapped = _source(sim, severity_map={"3": "emergency"}).fetch(None)
    assert {i.raw["level"]: i.severity for i in unmapped} == {1: None, 2: None, 3: "emergency"}


def test_severity_map_refuses_a_class_the_hub_does_not_have(sim: Simulator) -> None:
    with pytest.raises(SourceError, match="severity_map"):
        _source(sim, severity_map={"3": "urgent"})


def test_an_item_without_an_id_is_skipped_not_the_whole_poll(make_sim: Any) -> None:
    rows = sample_items(2) + [{"title": "không có mã"}]
    sim = make_sim(rows)
    assert [i.external_id for i in _source(sim).fetch(None)] == ["SIM-0001", "SIM-0002"]
    check = _source(sim).test()
    assert check.ok and "1 skipped" in check.detail and "no external_id" in check.detail


def test_naive_times_are_read_in_vietnam_time(make_sim: Any) -> None:
    sim = make_sim([{"id": "a", "title": "t", "issued_at": "2025-09-01 10:00:00"}])
    assert _source(sim).fetch(None)[0].published_at == datetime(2025, 9, 1, 10, 0, tzinfo=ICT)


def test_since_is_sent_when_configured(sim: Simulator) -> None:
    since = datetime(2025, 9, 1, 0, 0, tzinfo=timezone.utc)
    _source(sim, since_param="updated_since").fetch(since)
    assert "updated_since=2025-09-01T00%3A00%3A00%2B00%3A00" in _list_requests(sim)[0]


def test_without_the_token_the_system_refuses_and_the_error_names_auth(sim: Simulator) -> None:
    for auth in ({"type": "none"}, {"type": "bearer", "token": "wrong"}):
        source = _source(sim, auth=auth)
        with pytest.raises(SourceError, match=r"authentication refused .* \(HTTP 401\)") as caught:
            source.fetch(None)
        assert caught.value.transient is False
        check = source.test()
        assert not check.ok and "authentication refused" in check.detail


def test_a_token_endpoint_with_client_credentials(make_sim: Any) -> None:
    sim = make_sim(client_id="tinh-80", client_secret="s3cret")
    auth = {"type": "token_endpoint", "token_url": f"{sim.url}/oauth/token", "client_id": "tinh-80",
            "client_secret": "s3cret"}
    source = _source(sim, auth=auth)
    assert len(source.fetch(None)) == 7
    assert len(source.fetch(None)) == 7
    assert [p for m, p in sim.requests if m == "POST"] == ["/oauth/token"]  # the token is kept
    sim.issued.clear()  # the system revokes it: one new token, then success
    assert len(source.fetch(None)) == 7
    wrong = _source(sim, auth={**auth, "client_secret": "nope"})
    with pytest.raises(SourceError, match="refused by the token endpoint .* check client_id and client_secret"):
        wrong.fetch(None)


def test_an_api_key_header(make_sim: Any) -> None:
    sim = make_sim(api_key="k-80")
    auth = {"type": "header", "header_name": "X-API-Key", "header_value": "k-80"}
    assert len(_source(sim, auth=auth).fetch(None)) == 7


def test_a_next_link_to_another_host_is_not_followed(make_sim: Any) -> None:
    sim = make_sim(sample_items(4))
    source = _source(sim, paging={"mode": "next_link", "items_field": "data", "next_field": "next"},
                     query={"size": 2})
    original = sim._page

    def elsewhere(query: dict[str, list[str]]) -> dict[str, Any]:
        return {**original(query), "next": "http://203.0.113.9/steal?page=2"}

    sim._page = elsewhere  # type: ignore[method-assign]
    with pytest.raises(SourceError, match="credentials are never sent elsewhere"):
        source.fetch(None)


def test_unreachable_system_is_transient(sim: Simulator) -> None:
    source = _source(sim)
    sim.stop()
    with pytest.raises(SourceError, match="cannot reach") as caught:
        source.fetch(None)
    assert caught.value.transient is True


def test_missing_auth_settings_are_named() -> None:
    with pytest.raises(SourceError, match="auth type 'token_endpoint' needs token_url, client_id, client_secret"):
        NationalSource.configured({"base_url": "http://127.0.0.1:9/api", "items_path": "/x",
                                   "auth": {"type": "token_endpoint"}})
    with pytest.raises(SourceError, match="is not an http:// or https:// URL"):
        NationalSource.configured({"base_url": "file:///etc", "items_path": "/x"})


def test_the_hub_finds_the_plugin_by_its_entry_point() -> None:
    plugins = Plugins()
    plugins.load_entry_points({"national"})
    assert plugins.source("national") is NationalSource
