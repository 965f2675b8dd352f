"""The programmes API: what a save refuses and why (naming the field), who may save what where,
overlaps refused or kept with a precedence (and what the materialiser then gives each), an edit
cancelling and remaking the commands under a new revision, occurrences and overlaps in local time,
.ics import and export."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.access.actors import local_admin
from hub.api import create_app
from hub.broadcast.materialise import ISSUER, Materialiser
from hub.broadcast.programmes import LOCAL_TZ
from hub.runtime import Runtime
from hub.store.models import Command, Delivery
from tests.support.accounts import make_token, make_user
from tests.support.api import assert_error
from tests.support.dispatch import add
from tests.support.programmes import calendar, event, next_monday, published_content

UTC = timezone.utc


@pytest.fixture
def client(hub: Runtime) -> FlaskClient:
    return create_app(hub, authenticator=local_admin).test_client()


def soon(hours: int = 2) -> datetime:
    """A local time a few hours ahead, on the minute: its first occurrence is within the look-ahead."""
    return (datetime.now(LOCAL_TZ) + timedelta(hours=hours)).replace(second=0, microsecond=0, tzinfo=None)


def daily(at: datetime, minutes: int = 15, uid: str = "d") -> str:
    return calendar(event(uid, at, minutes=minutes, rrule={"freq": "daily"}))


def body(ical: str, cid: str, target: dict | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": "Thời sự", "ical": ical, "target": target or {"areas": ["27694"]}, "content_id": cid, **extra}


def programme_commands(rt: Runtime, pid: str) -> list[Command]:
    with rt.db.session() as s:
        return list(s.scalars(select(Command).where(Command.issuer == ISSUER.name,
                                                    Command.idempotency_key.like(f"programme:{pid}:%"))
                              .order_by(Command.start_at, Command.idempotency_key)))


def test_bad_input_is_refused_naming_the_field(hub: Runtime, client: FlaskClient) -> None:
    add(hub, "b1")
    cid = published_content(hub)
    draft = published_content(hub, status="draft")
    ical = daily(soon())
    post = lambda b: client.post("/api/programmes", json=b)  # noqa: E731
    assert_error(post({**body(ical, cid), "stream_url": "http://radio.example/live"}), 422, "json", "stream_url",
                 contains="exactly one")
    assert_error(post({**body(ical, cid), "content_id": None}), 422, "json", "content_id", contains="exactly one")
    assert_error(post(body(ical, cid, priority="emergency")), 422, "json", "priority", contains="at once")
    assert_error(post(body(ical, draft)), 409, "json", "content_id", contains=f"content {draft} is draft")
    assert_error(post({**body(ical, cid), "content_id": None, "playlist": [cid, draft]}), 409, "json", "playlist.1",
                 contains=draft)
    assert_error(post(body("BEGIN:VCALENDAR\nEND:VCALENDAR\n", cid)), 422, "json", "ical", contains="VEVENT")
    assert_error(post(body("not a calendar", cid)), 422, "json", "ical", contains="not iCalendar")
    own = {**body(ical, cid), "content_id": None, "stream_url": "http://127.0.0.1:6379/live"}
    assert_error(post(own), 422, "json", "stream_url", contains="hub's own Redis")
    assert_error(post(body(ical, cid, valid_from="2030-01-02T00:00:00+07:00", valid_until="2030-01-01T00:00:00+07:00")),
                 422, "json", "valid_until")
    assert_error(post(body(ical, cid, target={"areas": ["99999"]})), 422, "json", "target.areas", contains="99999")
    assert_error(post(body(ical, cid, overlap="keep")), 422, "json", "precedence")
    assert client.get("/api/programmes").get_json() == []  # nothing was saved
    r = client.post("/api/programmes/import", json={"ics": "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:2030\n",
                                                    "common": {"target": {"areas": ["27694"]}, "content_id": cid}})
    assert_error(r, 422, "json", "ics")
    r = client.post("/api/programmes/import", json={"ics": ical, "per_uid": {"nope": {"target": {"areas": ["27694"]},
                                                                                      "content_id": cid}}})
    assert_error(r, 422, "json", "per_uid", contains="nope")
    r = client.post("/api/programmes/import", json={"ics": ical})
    assert_error(r, 422, "json", "per_uid", contains="nothing says what")


def test_a_saved_programme_makes_its_coming_commands_and_shows_local_times(hub: Runtime, client: FlaskClient) -> None:
    add(hub, "s1", "s2")
    cid = published_content(hub)
    at = soon()
    r = client.post("/api/programmes", json=body(daily(at), cid))
    assert r.status_code == 201, r.get_json()
    p = r.get_json()
    assert p["area_code"] == "27694" and p["revision"] == 0 and p["commands"]["created"] == 1
    assert p["created_at"].endswith("+07:00")
    [cmd] = programme_commands(hub, p["id"])
    assert cmd.start_at == at.replace(tzinfo=LOCAL_TZ).astimezone(UTC) and cmd.total == 2
    assert cmd.expires_at == cmd.start_at + timedelta(minutes=15)  # the slot's end
    occ = client.get(f"/api/programmes/{p['id']}/occurrences",
                     query_string={"to": (datetime.now(UTC) + timedelta(days=2, hours=3)).isoformat()}).get_json()
    assert [o["start"] for o in occ] == [(at + timedelta(days=d)).replace(tzinfo=LOCAL_TZ).isoformat()
                                         for d in range(3)]
    assert_error(client.get(f"/api/programmes/{p['id']}/occurrences", query_string={"from": "2030-01-02T00:00:00Z",
                                                                                 "to": "2030-01-01T00:00:00Z"}),
                 422, "query", "to")
    assert client.get("/api/programmes", query_string={"area": "27694"}).get_json()[0]["id"] == p["id"]
    assert client.get("/api/programmes", query_string={"area": "28099"}).get_json() == []
    assert_error(client.get("/api/programmes", query_string={"area": "nowhere"}), 422, "query", "area")
    ics = client.get("/api/programmes.ics", query_string={"area": "794"}).get_data(as_text=True)
    assert "BEGIN:VEVENT" in ics and "Thời sự" in ics


def test_an_overlap_is_refused_naming_device_times_and_programmes(hub: Runtime, client: FlaskClient) -> None:
    add(hub, "v1", "v2")
    cid = published_content(hub)
    at = soon(3)
    first = client.post("/api/programmes", json=body(daily(at), cid)).get_json()
    r = client.post("/api/programmes", json={**body(daily(at + timedelta(minutes=10), uid="x"), cid,
                                                    target={"devices": ["V2"]}), "name": "Chợ"})
    err = assert_error(r, 409, "json", "overlap", contains="device V2")
    line = err["errors"]["json"]["overlap"][0]
    assert at.strftime("%H:%M") in line and (at + timedelta(minutes=10)).strftime("%H:%M") in line
    assert first["id"] in line and "Chợ" in line and "(+07:00)" in line
    assert len(client.get("/api/programmes").get_json()) == 1
    conflicts = client.get(f"/api/programmes/{first['id']}/conflicts").get_json()
    assert conflicts == []


def test_a_kept_overlap_gives_the_shared_devices_to_the_higher_precedence(hub: Runtime, client: FlaskClient) -> None:
    add(hub, "k1", "k2", "k3")
    cid = published_content(hub)
    at = soon(4)
    low = client.post("/api/programmes", json=body(daily(at, minutes=30), cid)).get_json()  # K1, K2, K3
    same = body(daily(at + timedelta(minutes=10), uid="y"), cid, target={"devices": ["K2", "K3"]}, overlap="keep")
    assert_error(client.post("/api/programmes", json={**same, "precedence": 0}), 422, "json", "precedence",
                 contains="same precedence")
    r = client.post("/api/programmes", json={**same, "precedence": 5})
    assert r.status_code == 201, r.get_json()
    high = r.get_json()
    assert high["precedence"] == 5 and "device K2" in high["kept_overlaps"][0]
    window = {"to": (datetime.now(UTC) + timedelta(days=2, hours=5)).isoformat()}
    assert len(client.get(f"/api/programmes/{high['id']}/conflicts", query_string=window).get_json()) == 2 * 3
    # the low programme's command made before gives K2 and K3 up: cancelled, and made again without them
    cmds = programme_commands(hub, low["id"])
    assert [(c.target, c.cancelled_at is None) for c in cmds] == [({"areas": ["27694"]}, False),
                                                                  ({"devices": ["K1"]}, True)]
    assert client.get(f"/api/programmes/{low['id']}").get_json()["revision"] == 1
    done = Materialiser(hub, look_ahead=timedelta(days=2)).run()
    skipped = {k: v for k, v in done.skipped.items() if k.startswith(f"programme:{low['id']}:")}
    assert len(skipped) == 1 and list(skipped.values()) == [["K2", "K3"]]  # tomorrow's, said so
    assert [c.total for c in programme_commands(hub, low["id"]) if c.cancelled_at is None] == [1, 1]
    assert all(c.total == 2 for c in programme_commands(hub, high["id"]))


def test_an_edit_cancels_and_remakes_the_commands_under_a_new_revision(hub: Runtime, client: FlaskClient) -> None:
    add(hub, "e1")
    cid = published_content(hub)
    at = soon()
    p = client.post("/api/programmes", json=body(daily(at), cid)).get_json()
    [old] = programme_commands(hub, p["id"])
    later = at + timedelta(minutes=30)
    r = client.patch(f"/api/programmes/{p['id']}", json={"ical": daily(later)})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["revision"] == 1 and r.get_json()["commands"] == {
        "created": 1, "cancelled": 1, "skipped_devices": {}, "refused": {}}
    cmds = {c.id: c for c in programme_commands(hub, p["id"])}
    assert cmds[old.id].cancelled_at is not None and "edited by local-admin" in cmds[old.id].cancelled_by
    [new] = [c for c in cmds.values() if c.id != old.id]
    assert new.idempotency_key.endswith("@r1") and new.start_at == later.replace(tzinfo=LOCAL_TZ).astimezone(UTC)
    with hub.db.session() as s:
        assert s.scalars(select(Delivery.state).where(Delivery.command_id == old.id)).all() == ["superseded"]
    again = Materialiser(hub).run()  # a scheduler restarting with the same revision makes nothing new
    assert not [k for k in again.created if p["id"] in k]
    assert client.delete(f"/api/programmes/{p['id']}").status_code == 204
    assert programme_commands(hub, p["id"])[-1].cancelled_at is not None
    assert_error(client.get(f"/api/programmes/{p['id']}"), 404, "path", "id")


def test_roles_and_areas(hub: Runtime) -> None:
    add(hub, "r1")
    add(hub, "r2", area="27697")
    cid = published_content(hub)
    tokens = {}
    for name, roles, area in (("op", ["operator"], "27694"), ("viewer", ["viewer"], "27694"),
                              ("other", ["operator"], "27697")):
        make_user(hub, name, roles, [area], login=False)
        tokens[name] = {"Authorization": f"Bearer {make_token(hub, name)[1]}"}
    c = create_app(hub).test_client()
    ical = daily(soon(5))
    assert_error(c.post("/api/programmes", json=body(ical, cid), headers=tokens["viewer"]), 403)
    assert_error(c.post("/api/programmes", json=body(ical, cid, target={"areas": ["794"]}), headers=tokens["op"]),
                 403, "json", "target", contains="outside the areas")
    assert_error(c.post("/api/programmes", json=body(ical, cid, target={"devices": ["R2"]}), headers=tokens["op"]),
                 403, "json", "target")
    r = c.post("/api/programmes", json=body(ical, cid), headers=tokens["op"])
    assert r.status_code == 201, r.get_json()
    pid = r.get_json()["id"]
    assert c.get("/api/programmes", headers=tokens["other"]).get_json() == []  # not its area
    assert_error(c.get(f"/api/programmes/{pid}", headers=tokens["other"]), 404)
    assert_error(c.patch(f"/api/programmes/{pid}", json={"name": "x"}, headers=tokens["other"]), 404)
    assert_error(c.delete(f"/api/programmes/{pid}", headers=tokens["viewer"]), 403)
    assert c.get(f"/api/programmes/{pid}", headers=tokens["viewer"]).status_code == 200  # its area: it sees it
    assert "BEGIN:VEVENT" not in c.get("/api/programmes.ics", headers=tokens["other"]).get_data(as_text=True)


def test_a_week_calendar_imports_per_uid(hub: Runtime, client: FlaskClient) -> None:
    add(hub, "i1")
    add(hub, "i2", area="27697")
    cid = published_content(hub)
    monday = next_monday()
    ics = calendar(event("a", monday.replace(hour=6), rrule={"freq": "daily"}),
                   event("b", monday.replace(hour=6), rrule={"freq": "daily"}))
    r = client.post("/api/programmes/import", json={"ics": ics, "common": {"target": {"areas": ["27694"]},
                                                                           "content_id": cid},
                                                    "per_uid": {"b": {"target": {"areas": ["27697"]},
                                                                      "content_id": cid, "name": "Phường 2"}}})
    assert r.status_code == 201, r.get_json()
    got = {p["name"]: p["area_code"] for p in r.get_json()["programmes"]}
    assert got == {"a": "27694", "Phường 2": "27697"}
    # the same again overlaps what was just imported: refused whole, naming where
    r = client.post("/api/programmes/import", json={"ics": ics, "common": {"target": {"areas": ["27694"]},
                                                                           "content_id": cid}})
    assert_error(r, 409, "json", "common.overlap", contains="device I1")
    assert len(client.get("/api/programmes").get_json()) == 2
