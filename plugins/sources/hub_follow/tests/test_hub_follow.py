"""One hub follows another over loopback: what the follower's source yields from the followed
hub's feed, poll after poll, and what it must never yield."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import timedelta

import pytest

from hub.source import SourceError
from hub.store.db import utcnow

from hub_follow_helpers import LoopbackHub
from hub_source_hub_follow.source import HubFollow

MakeHub = Callable[[str], LoopbackHub]


def follower(hub: LoopbackHub, token: str, own: str = "tinh-b", **config: object) -> HubFollow:
    return HubFollow.configured({"base_url": hub.url, "token": token, "hub_name": own, "timeout_s": 5, **config})


def ids(items: list) -> list[str]:
    return sorted(i.external_id for i in items)


def test_each_published_content_comes_once_across_polls_and_never_a_draft(make_hub: MakeHub) -> None:
    a = make_hub("tinh-a")
    token = a.token("tinh-b", ["viewer"], ["80"], read_only=True)
    storm = a.content("Bão số 3", area="27694", priority="emergency", category="Met",
                      valid_until=utcnow() + timedelta(hours=6))
    old = a.content("Bản tin trước quy trình", status=None)  # made before the workflow: counts as published
    draft = a.content("Bản nháp", status="draft")
    archived = a.content("Đã lưu trữ", status="archived")
    a.content("Chờ duyệt", status="submitted")
    audio = a.content("Thông báo", kind="audio_file", body=None,
                      media={"uri": "https://media.tinh-a.vn/a.mp3", "sha256": "ab" * 32, "duration_s": 12.5,
                             "mime": "audio/mpeg"})
    source = follower(a, token, page_size=2)

    first = source.fetch(None)
    assert ids(first) == sorted(f"tinh-a:{c}" for c in (storm, old, audio))
    assert source.fetch(None) == []  # the cursor remembers where the last poll stopped
    later = a.content("Tin mới", area="28099")
    assert ids(source.fetch(None)) == [f"tinh-a:{later}"]
    assert source.fetch(None) == []
    assert not {f"tinh-a:{draft}", f"tinh-a:{archived}"} & {i.external_id for i in first}

    by_id = {i.external_id: i for i in first}
    bulletin = by_id[f"tinh-a:{storm}"]
    assert (bulletin.title, bulletin.text, bulletin.language) == ("Bão số 3", "Nội dung: Bão số 3", "vi")
    assert (bulletin.severity, bulletin.category, bulletin.area_codes) == ("emergency", "Met", ("27694",))
    assert bulletin.expires_at is not None and bulletin.expires_at > utcnow()
    assert bulletin.raw and bulletin.raw["via"] == "tinh-a"
    sound = by_id[f"tinh-a:{audio}"]
    assert [(m.url, m.media_type) for m in sound.attachments] == [("https://media.tinh-a.vn/a.mp3", "audio/mpeg")]
    assert sound.raw and sound.raw["media"]["sha256"] == "ab" * 32 and sound.raw["media"]["duration_s"] == 12.5


def test_a_restarted_follower_recovers_from_since(make_hub: MakeHub) -> None:
    a = make_hub("tinh-a")
    token = a.token("tinh-b", ["viewer"], ["80"], read_only=True)
    a.content("Tin cũ", ago=timedelta(hours=2))
    recent = a.content("Tin gần đây", ago=timedelta(minutes=5))
    fresh = follower(a, token)  # a new process: no cursor in memory, the hub passes its last success
    assert ids(fresh.fetch(utcnow() - timedelta(hours=1))) == [f"tinh-a:{recent}"]
    assert fresh.fetch(utcnow() - timedelta(hours=1)) == []  # from then on its cursor


def test_a_token_limited_to_an_area_sees_that_area_and_contents_for_everyone(make_hub: MakeHub) -> None:
    a = make_hub("tinh-a")
    inside = a.content("Phường 1", area="27694")
    everyone = a.content("Toàn quốc", area=None)
    a.content("Huyện khác", area="28099")
    a.content("Cả tỉnh", area="80")  # above the token's district: not within its areas
    token = a.token("tp-tan-an", ["viewer"], ["80"], areas=["794"], read_only=True)

    assert ids(follower(a, token).fetch(None)) == sorted([f"tinh-a:{inside}", f"tinh-a:{everyone}"])
    # the source's own area filter narrows further, and may not reach outside the token's areas
    assert ids(follower(a, token, areas=["27697"]).fetch(None)) == [f"tinh-a:{everyone}"]
    with pytest.raises(SourceError, match="403.*28099 lies outside"):
        follower(a, token, areas=["28099"]).fetch(None)


def test_no_token_or_a_wrong_one_is_refused_by_name(make_hub: MakeHub) -> None:
    a = make_hub("tinh-a")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{a.url}/api/feed/contents", timeout=5)
    assert caught.value.code == 401
    assert "API token" in json.loads(caught.value.read())["message"]

    wrong = follower(a, "hub_not-a-token")
    with pytest.raises(SourceError, match="token was refused \\(401") as refused:
        wrong.fetch(None)
    assert not refused.value.transient  # a wrong token stays wrong: retrying will not help
    check = wrong.test()
    assert not check.ok and "token was refused" in check.detail


def test_the_check_reads_the_feed_with_the_token(make_hub: MakeHub) -> None:
    a = make_hub("tinh-a")
    a.content("Tin mẫu")
    check = follower(a, a.token("tinh-b", ["viewer"], ["80"], read_only=True)).test()
    assert check.ok, check.detail
    assert "hub tinh-a" in check.detail and [i.title for i in check.sample] == ["Tin mẫu"]


def test_the_feed_is_paged_and_a_fetch_reads_at_most_max_pages(make_hub: MakeHub) -> None:
    a = make_hub("tinh-a")
    token = a.token("tinh-b", ["viewer"], ["80"], read_only=True)
    made = [a.content(f"Tin {n}", ago=timedelta(minutes=10 - n)) for n in range(5)]
    page = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"{a.url}/api/feed/contents?limit=2", headers={"Authorization": f"Bearer {token}"}), timeout=5).read())
    assert page["hub"] == "tinh-a" and page["more"] is True
    assert [i["id"] for i in page["items"]] == made[:2]  # oldest first

    assert len(follower(a, token, page_size=2).fetch(None)) == 5  # one fetch walks every page
    slow = follower(a, token, page_size=2, max_pages=1)
    assert [len(slow.fetch(None)) for _ in range(4)] == [2, 2, 1, 0]


def test_no_hub_gives_back_what_it_took_from_its_follower(make_hub: MakeHub) -> None:
    a, b = make_hub("tinh-a"), make_hub("tinh-b")
    mine = a.content("Bão của tỉnh A")
    # tinh-b took it in through its own hub_follow source (an intake made it a content there)
    b.content("Bão của tỉnh A", source="from-tinh-a", external_id=f"tinh-a:{mine}")
    theirs = b.content("Tin của tỉnh B")
    token_for_a = b.token("tinh-a", ["viewer"], ["80"], read_only=True)
    token_for_c = b.token("tinh-c", ["viewer"], ["80"], read_only=True)

    assert ids(follower(b, token_for_a, own="tinh-a").fetch(None)) == [f"tinh-b:{theirs}"]
    # a third hub gets it under its first hub's id, so it takes it in once whichever way it comes
    assert ids(follower(b, token_for_c, own="tinh-c").fetch(None)) == sorted([f"tinh-a:{mine}", f"tinh-b:{theirs}"])
    # two hubs with one name cannot tell their contents apart: refused, saying so
    with pytest.raises(SourceError, match="also named tinh-b"):
        follower(b, token_for_c, own="tinh-b").fetch(None)


def test_a_silent_hub_is_a_transient_error() -> None:
    with socket.socket() as listener:  # accepts connections (the backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        source = HubFollow.configured({"base_url": f"http://127.0.0.1:{port}", "token": "hub_x", "hub_name": "b",
                                       "timeout_s": 0.3})
        with pytest.raises(SourceError, match="no answer within 0.3 s") as caught:
            source.fetch(None)
    assert caught.value.transient
