"""GET /api/commands narrowed by state, class, verb, issuer and creation time, paged; a filter
value that is not allowed is refused naming the parameter."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from hub.access.actors import Actor, local_admin
from hub.api import create_app
from hub.runtime import Runtime
from hub.store.models import Command, Delivery, DeliveryState
from tests.support.api import assert_error, device_body

T0 = datetime(2026, 12, 5, 1, 0, tzinfo=timezone.utc)


@pytest.fixture
def client(rt: Runtime, legacy_areas: None, vendors: dict[str, str]) -> FlaskClient:
    c = create_app(rt, authenticator=local_admin).test_client()
    for did, kind, area in (("spk-a", "speaker", "27694"), ("spk-b", "speaker", "28099"),
                            ("led-a", "led_board", "27694")):
        assert c.post("/api/devices", json=device_body(vendors, did, kind, area)).status_code == 201
    return c


def _send(c: FlaskClient, body: dict[str, object]) -> str:
    r = c.post("/api/commands", json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def _created(rt: Runtime, cid: str, at: datetime) -> None:
    with rt.db.session() as s:
        s.execute(update(Command).where(Command.id == cid).values(created_at=at))


def _ids(resp: object) -> list[str]:
    assert resp.status_code == 200, resp.get_json()  # type: ignore[attr-defined]
    return [c["id"] for c in resp.get_json()]  # type: ignore[attr-defined]


@pytest.fixture
def four(rt: Runtime, client: FlaskClient) -> dict[str, str]:
    """running: a volume change still queued; done: an emergency stop every device answered;
    waiting: a text for tomorrow; cancelled: another one for tomorrow, cancelled."""
    running = _send(client, {"verb": "set_volume", "params": {"level": 30}, "target": {"devices": ["spk-a"]}})
    done = _send(client, {"verb": "stop", "priority": "emergency", "target": {"devices": ["spk-a", "spk-b"]}})
    with rt.db.session() as s:
        s.execute(update(Delivery).where(Delivery.command_id == done).values(state=DeliveryState.ACKED,
                                                                              finished_at=T0))
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    led = {"verb": "led_show", "params": {"text": "Họp tổ dân phố"}, "target": {"devices": ["led-a"]},
           "start_at": tomorrow}
    waiting = _send(client, led)
    cancelled = _send(client, {**led, "params": {"text": "Hoãn họp"}})
    assert client.post(f"/api/commands/{cancelled}/cancel").status_code == 200
    for i, cid in enumerate((running, done, waiting, cancelled)):
        _created(rt, cid, T0 + timedelta(hours=i))
    return {"running": running, "done": done, "waiting": waiting, "cancelled": cancelled}


def test_commands_filter_by_state_class_verb_issuer(client: FlaskClient, four: dict[str, str]) -> None:
    for state, cid in four.items():
        assert _ids(client.get(f"/api/commands?state={state}")) == [cid], state
        assert client.get(f"/api/commands/{cid}").get_json()["state"] == state
    assert _ids(client.get("/api/commands?priority=emergency")) == [four["done"]]
    assert _ids(client.get("/api/commands?verb=led_show")) == [four["cancelled"], four["waiting"]]
    assert _ids(client.get("/api/commands?verb=led_show&state=waiting")) == [four["waiting"]]
    assert len(_ids(client.get("/api/commands?issuer=local-admin"))) == 4
    assert _ids(client.get("/api/commands?issuer=somebody-else")) == []


def test_commands_filter_by_date_range_with_any_offset_and_page(client: FlaskClient, four: dict[str, str]) -> None:
    # created at 01:00, 02:00, 03:00, 04:00 UTC = 08:00 … 11:00 in the province
    r = client.get("/api/commands?from=2026-12-05T09:00:00%2B07:00&to=2026-12-05T03:30:00Z")
    assert _ids(r) == [four["waiting"], four["done"]]
    assert _ids(client.get("/api/commands?from=2026-12-05T03:00:00Z")) == [four["cancelled"], four["waiting"]]
    assert _ids(client.get("/api/commands?to=2026-12-05T08:00:00%2B07:00")) == []
    r = client.get("/api/commands?page_size=3&page=2")
    assert _ids(r) == [four["running"]] and json.loads(r.headers["X-Pagination"])["total"] == 4


@pytest.mark.parametrize("query, field", [("state=lost", "state"), ("priority=urgent", "priority"),
                                          ("verb=dance", "verb"), ("from=tomorrow", "from"),
                                          ("to=2026-13-01T00:00:00Z", "to"),
                                          ("from=2026-12-05T00:00:00", "from"),  # no offset: which zone?
                                          ("from=2026-12-06T00:00:00Z&to=2026-12-05T00:00:00Z", "to"),
                                          ("class=normal", "class")])
def test_bad_filter_values_are_refused_naming_the_parameter(client: FlaskClient, query: str, field: str) -> None:
    assert_error(client.get(f"/api/commands?{query}"), 422, "query", field)


def test_a_commune_operator_filters_only_what_it_sees(rt: Runtime, client: FlaskClient,
                                                      four: dict[str, str]) -> None:
    """The done stop reached spk-b too; in Phường 2's view only what reaches it counts."""
    other = Actor(name="xa-long-huu-dong", roles=frozenset({"operator"}), areas=frozenset({"28099"}))
    c = create_app(rt, authenticator=lambda _req: other).test_client()
    assert _ids(c.get("/api/commands")) == [four["done"]]
    assert _ids(c.get("/api/commands?state=done")) == [four["done"]]
    assert _ids(c.get("/api/commands?state=running")) == []
    with rt.db.session() as s:  # spk-b's delivery back to sent: running for it too
        s.execute(update(Delivery).where(Delivery.command_id == four["done"], Delivery.device_id == "spk-b")
                  .values(state=DeliveryState.SENT, finished_at=None))
    assert _ids(c.get("/api/commands?state=running")) == [four["done"]]
    assert c.get(f"/api/commands/{four['done']}").get_json()["state"] == "running"
