"""GET /api/devices/<id>/history: a device's operating-state transitions and its deliveries, one
timeline newest first, paged, narrowed by time, in the caller's areas only."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from hub.access.actors import Actor, local_admin
from hub.api import create_app
from hub.runtime import Runtime
from hub.store.models import Delivery, DeliveryState, DeviceEvent
from tests.support.api import assert_error, device_body

T0 = datetime(2026, 12, 5, 1, 0, tzinfo=timezone.utc)  # 08:00 in the province


@pytest.fixture
def client(rt: Runtime, legacy_areas: None, vendors: dict[str, str]) -> FlaskClient:
    c = create_app(rt, authenticator=local_admin).test_client()
    for did, area in (("spk-a", "27694"), ("spk-b", "28099")):
        assert c.post("/api/devices", json=device_body(vendors, did, "speaker", area)).status_code == 201
    return c


def _events(rt: Runtime, device_id: str, *rows: tuple[timedelta, str, str, str | None]) -> None:
    with rt.db.session() as s:
        for offset, state, previous, reason in rows:
            s.add(DeviceEvent(device_id=device_id, at=T0 + offset, state=state, previous=previous, reason=reason))


def _command(rt: Runtime, c: FlaskClient, device: str, level: int, at: timedelta, *, priority: str = "normal",
             state: str | None = None, reason: str | None = None) -> str:
    r = c.post("/api/commands", json={"verb": "set_volume", "params": {"level": level}, "priority": priority,
                                      "target": {"devices": [device]}})
    assert r.status_code == 201, r.get_json()
    cid = r.get_json()["id"]
    values: dict[str, object] = {"queued_at": T0 + at}
    if state is not None:
        values.update(state=state, reason=reason, sent_at=T0 + at + timedelta(seconds=1),
                      finished_at=T0 + at + timedelta(seconds=2))
    with rt.db.session() as s:
        s.execute(update(Delivery).where(Delivery.command_id == cid).values(**values))
    return cid


def test_history_merges_transitions_and_deliveries_newest_first(rt: Runtime, client: FlaskClient) -> None:
    _events(rt, "spk-a", (timedelta(minutes=0), "online", "unknown", None),
            (timedelta(minutes=30), "offline", "online", "silent for 180 s"))
    first = _command(rt, client, "spk-a", 40, timedelta(minutes=10), state=DeliveryState.ACKED)
    second = _command(rt, client, "spk-a", 60, timedelta(minutes=40), priority="emergency",
                      state=DeliveryState.EXPIRED, reason="no answer before expires_at")
    _command(rt, client, "spk-b", 70, timedelta(minutes=20))  # another device's: not in this history

    r = client.get("/api/devices/spk-a/history")
    assert r.status_code == 200, r.get_json()
    got = r.get_json()
    assert [e["kind"] for e in got] == ["delivery", "status", "delivery", "status"]
    newest = got[0]["delivery"]
    assert newest["command_id"] == second and newest["verb"] == "set_volume" and newest["priority"] == "emergency"
    assert newest["state"] == "expired" and newest["reason"] == "no answer before expires_at"
    assert datetime.fromisoformat(newest["finished_at"]) == T0 + timedelta(minutes=40, seconds=2)
    assert newest["device"]["name"] == "Thiết bị spk-a" and newest["commune"] == {"code": "27694", "name": "Phường 1"}
    assert got[1]["status"] == {"state": "offline", "previous": "online", "reason": "silent for 180 s"}
    assert datetime.fromisoformat(got[1]["at"]) == T0 + timedelta(minutes=30)
    assert got[2]["delivery"]["command_id"] == first and got[2]["delivery"]["state"] == "acked"
    assert got[3]["status"]["state"] == "online"


def test_history_is_paged_and_narrowed_by_time_and_kind(rt: Runtime, client: FlaskClient) -> None:
    _events(rt, "spk-a", *[(timedelta(minutes=2 * i), "online" if i % 2 else "offline",
                            "offline" if i % 2 else "online", None) for i in range(5)])
    for i in range(3):
        _command(rt, client, "spk-a", 10 + i, timedelta(minutes=2 * i + 1), state=DeliveryState.ACKED)

    r = client.get("/api/devices/spk-a/history?page_size=3&page=2")
    assert json.loads(r.headers["X-Pagination"])["total"] == 8
    ats = [datetime.fromisoformat(e["at"]) for e in r.get_json()]  # 8, 6, 5 | 4, 3, 2 | 1, 0
    assert ats == [T0 + timedelta(minutes=m) for m in (4, 3, 2)]

    # from and to with offsets of their own: 08:03+07:00 is 01:03 UTC
    r = client.get("/api/devices/spk-a/history?from=2026-12-05T08:03:00%2B07:00&to=2026-12-05T01:06:00Z")
    assert [datetime.fromisoformat(e["at"]) for e in r.get_json()] == [T0 + timedelta(minutes=m) for m in (5, 4, 3)]
    only = client.get("/api/devices/spk-a/history?kind=status").get_json()
    assert len(only) == 5 and {e["kind"] for e in only} == {"status"}
    assert {e["kind"] for e in client.get("/api/devices/spk-a/history?kind=delivery").get_json()} == {"delivery"}

    assert_error(client.get("/api/devices/spk-a/history?from=yesterday"), 422, "query", "from")
    assert_error(client.get("/api/devices/spk-a/history?from=2026-12-05T02:00:00Z&to=2026-12-05T01:00:00Z"),
                 422, "query", "to")
    assert_error(client.get("/api/devices/spk-a/history?kind=weather"), 422, "query", "kind")
    assert_error(client.get("/api/devices/nope/history"), 404, "path", "id")


def test_history_is_scoped_to_the_callers_areas(rt: Runtime, client: FlaskClient) -> None:
    _events(rt, "spk-b", (timedelta(0), "online", "unknown", None))
    commune = Actor(name="phuong-1", roles=frozenset({"operator"}), areas=frozenset({"27694"}))
    c = create_app(rt, authenticator=lambda _req: commune).test_client()
    assert c.get("/api/devices/spk-a/history").status_code == 200
    assert_error(c.get("/api/devices/spk-b/history"), 404, "path", "id")  # as GET /api/devices/spk-b
    assert c.get("/api/devices/spk-b").status_code == 404
