"""The feed of published contents other hubs follow (GET /api/feed/contents): its cursor, the
settle window, the loop rule's marks and the hub_name setting. Two hubs on loopback following
each other are tested with the hub_follow source (plugins/sources/hub_follow/tests)."""
from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from hub.access.actors import Actor, local_admin
from hub.api import create_app
from hub.config import ConfigError, load_settings
from hub.runtime import Runtime
from hub.store.db import utcnow
from hub.store.models import Content
from tests.support.api import assert_error


def add(rt: Runtime, title: str, ago: timedelta = timedelta(minutes=1), status: str | None = "published",
        **fields: Any) -> str:
    cid = uuid.uuid4().hex
    at = utcnow() - ago
    with rt.db.session() as s:
        s.add(Content(id=cid, title=title, kind="tts_text", body=title, created_by="t", created_at=at,
                      status=status, published_at=at if status == "published" else None, **fields))
    return cid


@pytest.fixture
def client(rt: Runtime, legacy_areas: None) -> FlaskClient:
    return create_app(rt, authenticator=local_admin).test_client()


def test_the_cursor_walks_every_published_content_once_oldest_first(rt: Runtime, client: FlaskClient) -> None:
    made = [add(rt, f"Tin {n}", ago=timedelta(minutes=10 - n)) for n in range(3)]
    add(rt, "Nháp", status="draft")
    seen, after, pages = [], None, 0
    while True:
        page = client.get("/api/feed/contents", query_string={"limit": 2, **({"after": after} if after else {})})
        assert page.status_code == 200, page.get_json()
        body = page.get_json()
        seen += [i["id"] for i in body["items"]]
        after, pages = body["next"], pages + 1
        if not body["more"]:
            break
    assert seen == made and pages == 2
    again = client.get("/api/feed/contents", query_string={"after": after}).get_json()
    assert again["items"] == [] and again["next"] == after  # nothing new: keep the cursor you have
    assert again["hub"] == rt.settings.hub_name


def test_a_content_published_this_instant_waits_for_the_settle_window(rt: Runtime, client: FlaskClient) -> None:
    """Its transaction may not have committed when a follower reads past its time: served a moment later."""
    add(rt, "Vừa xuất bản", ago=timedelta(0))
    assert client.get("/api/feed/contents").get_json()["items"] == []


def test_a_cursor_the_feed_did_not_give_is_refused_naming_it(client: FlaskClient) -> None:
    assert_error(client.get("/api/feed/contents?after=c1.bm9wZQ"), 422, "query", "after", "not a cursor")
    assert_error(client.get("/api/feed/contents?after=c1.x&since=2026-01-01T00:00:00%2B00:00"), 422, "query",
                 "since", "not both")
    # an instant that leaves the calendar in UTC is the caller's mistake, not a server error
    assert_error(client.get("/api/feed/contents?since=0001-01-01T00:00:00%2B14:00"), 422, "query", "since",
                 "out of range")


def test_a_followed_content_keeps_its_first_hubs_id_and_the_asker_gets_none_of_its_own(
        rt: Runtime, client: FlaskClient) -> None:
    first = uuid.uuid4().hex
    taken = add(rt, "Bão", source="from-national", external_id=f"vn-national:{first}")
    native = add(rt, "Tin tỉnh")
    rss = add(rt, "RSS", source="rss", external_id="https://baochinhphu.vn/a.htm")
    items = {i["id"]: i["origin"] for i in client.get("/api/feed/contents").get_json()["items"]}
    assert items == {taken: {"hub": "vn-national", "id": first}, native: {"hub": "hub", "id": native},
                     rss: {"hub": "hub", "id": rss}}
    asked = client.get("/api/feed/contents?exclude_origin=vn-national").get_json()["items"]
    assert {i["id"] for i in asked} == {native, rss}


def test_an_area_outside_the_callers_is_refused_and_an_unknown_one_named(rt: Runtime, legacy_areas: None) -> None:
    actor = Actor(name="tp-tan-an", roles=frozenset({"viewer"}), areas=frozenset({"794"}), read_only=True)
    c = create_app(rt, authenticator=lambda _req: actor).test_client()
    assert_error(c.get("/api/feed/contents?area=28099"), 403, "query", "area", "28099 lies outside")
    assert_error(c.get("/api/feed/contents?area=99999"), 422, "query", "area", "unknown area 99999")
    assert c.get("/api/feed/contents?area=27694").status_code == 200


def test_hub_name_is_checked_at_start(tmp_path: Path) -> None:
    assert load_settings({"HUB_HUB_NAME": "tinh-80"}).hub_name == "tinh-80"
    with pytest.raises(ConfigError, match="HUB_HUB_NAME \\(hub_name\\).*'Tỉnh:80'"):
        load_settings({"HUB_HUB_NAME": "Tỉnh:80"})
