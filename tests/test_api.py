"""The HTTP API against real Redis and a temporary SQLite database (no worker runs here, so
accepted deliveries stay `queued`)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.api import API_TITLE, create_app
from hub.access.actors import Actor, local_admin
from hub.store.models import DELIVERY_STATES, AuditEntry, Command, Delivery, DeviceStatus
from hub.runtime import Runtime
from tests.support.api import assert_error, device_body

# The `vendors` fixture (the real mqtt_speaker plugin, or a stand-in) is in tests/conftest.py.


@pytest.fixture
def client(rt: Runtime, legacy_areas: None) -> FlaskClient:
    # The local administrator, explicitly: the default authenticator wants accounts (test_accounts.py).
    return create_app(rt, authenticator=local_admin).test_client()


def restricted_client(rt: Runtime, *areas: str, name: str = "commune-op",
                      roles: tuple[str, ...] = ("operator",)) -> FlaskClient:
    actor = Actor(name=name, roles=frozenset(roles), areas=frozenset(areas))
    return create_app(rt, authenticator=lambda _req: actor).test_client()


DEVICES = [  # id, kind, area, tags
    ("spk-27694-1", "speaker", "27694", ["market"]),
    ("spk-27694-2", "speaker", "27694", []),
    ("led-27694-1", "led_board", "27694", ["market"]),
    ("spk-27697-1", "speaker", "27697", []),
    ("spk-28099-1", "speaker", "28099", []),
    ("spk-28099-A1", "speaker", "28099-A1", []),
]


@pytest.fixture
def seeded(client: FlaskClient, vendors: dict[str, str]) -> FlaskClient:
    for did, kind, area, tags in DEVICES:
        r = client.post("/api/devices", json=device_body(vendors, did, kind, area, tags))
        assert r.status_code == 201, r.get_json()
    return client


def ids(resp: Any) -> list[str]:
    assert resp.status_code == 200, resp.get_json()
    return [d["id"] for d in resp.get_json()]


def command_rows(rt: Runtime) -> int:
    with rt.db.session() as s:
        return s.scalar(select(func.count()).select_from(Command))


def test_openapi_lists_every_path_and_docs_work_offline(client: FlaskClient) -> None:
    r = client.get("/api/openapi.json")
    assert r.status_code == 200
    spec = r.get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == API_TITLE
    expected = {
        "/api/areas": {"get", "post"},
        "/api/areas/{code}": {"get"},
        "/api/devices": {"get", "post"},
        "/api/devices/{device_id}": {"get", "put", "patch", "delete"},
        "/api/devices/{device_id}/status": {"get"},
        "/api/groups": {"get", "post"},
        "/api/groups/{group_id}": {"get", "put", "delete"},
        "/api/contents": {"get", "post"},
        "/api/contents/{content_id}": {"get", "patch"},
        "/api/contents/{content_id}/approve": {"post"},
        "/api/contents/{content_id}/versions": {"get"},
        "/api/commands": {"get", "post"},
        "/api/commands/{command_id}": {"get"},
        "/api/commands/{command_id}/deliveries": {"get"},
        "/api/plugins": {"get"},
        "/api/capabilities": {"get"},
        "/api/health": {"get"},
    }
    for path, methods in expected.items():
        assert path in spec["paths"], path
        assert methods <= set(spec["paths"][path]), (path, spec["paths"][path].keys())
    post_cmd = spec["paths"]["/api/commands"]["post"]
    assert post_cmd["summary"] == "Issue a command" and "idempotency_key" in post_cmd["description"]
    assert {"201", "200", "403", "409", "422"} <= set(post_cmd["responses"])
    assert "SetVolumeParams" in spec["components"]["schemas"]

    docs = client.get("/api/docs")
    assert docs.status_code == 200 and b"swagger-ui" in docs.data
    script = docs.data.decode().split('<script src="')[2].split('"')[0]
    if script.startswith("/"):  # served from the swagger-ui-bundle package, no CDN needed
        asset = client.get(script)
        assert asset.status_code == 200 and len(asset.data) > 100_000
        asset.close()


# -- devices --------------------------------------------------------------------------------------
def test_devices_create_list_get_with_area_subtree(rt: Runtime, seeded: FlaskClient) -> None:
    c = seeded
    assert ids(c.get("/api/devices?area=794")) == ["led-27694-1", "spk-27694-1", "spk-27694-2", "spk-27697-1"]
    assert ids(c.get("/api/devices?area=28099")) == ["spk-28099-1", "spk-28099-A1"]
    assert ids(c.get("/api/devices?area=80&kind=led_board")) == ["led-27694-1"]
    assert ids(c.get("/api/devices?tag=market")) == ["led-27694-1", "spk-27694-1"]
    assert ids(c.get("/api/devices?tag=market&kind=speaker")) == ["spk-27694-1"]
    assert len(ids(c.get("/api/devices?online=false"))) == len(DEVICES)
    assert ids(c.get("/api/devices?online=true")) == []

    r = c.get("/api/devices?page=2&page_size=4")
    assert ids(r) == ["spk-28099-1", "spk-28099-A1"]
    meta = json.loads(r.headers["X-Pagination"])
    assert meta["total"] == len(DEVICES) and meta["total_pages"] == 2 and meta["page"] == 2

    one = c.get("/api/devices/spk-27694-1").get_json()
    assert one["area_code"] == "27694" and one["area_name"] == "Phường 1" and one["tags"] == ["market"]
    assert one["admin_state"] == "enabled" and one["status"] is None
    assert "audio.volume" in one["capabilities"] and not any(cap.startswith("led.") for cap in one["capabilities"])

    assert_error(c.get("/api/devices/spk-27694-1/status"), 404, "path", "id", "has not reported")
    with rt.db.session() as s:
        now = datetime.now(timezone.utc)
        s.add(DeviceStatus(device_id="spk-27694-1", online=True, activity="idle", volume=40, faults=[],
                           reported_at=now, last_seen_at=now))
    st = c.get("/api/devices/spk-27694-1/status").get_json()
    assert st["online"] is True and st["volume"] == 40 and st["activity"] == "idle"
    assert ids(c.get("/api/devices?online=true")) == ["spk-27694-1"]
    assert "spk-27694-1" not in ids(c.get("/api/devices?online=false"))
    health = c.get("/api/health").get_json()
    assert health["status"] == "ok" and health["database"]["ok"] and health["redis"]["ok"]
    assert health["devices"] == {"total": len(DEVICES), "online": 1, "offline": len(DEVICES) - 1}


def test_device_update_disable_and_delete(rt: Runtime, seeded: FlaskClient, vendors: dict[str, str]) -> None:
    c = seeded
    body = device_body(vendors, "spk-27697-1", "speaker", "27694", ["school"], name="Loa trường học")
    r = c.put("/api/devices/spk-27697-1", json=body)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["area_code"] == "27694" and r.get_json()["tags"] == ["school"]
    assert_error(c.put("/api/devices/spk-27697-1", json={**body, "id": "other"}), 422, "json", "id")
    assert_error(c.put("/api/devices/nope", json={**body, "id": None}), 404, "path", "id", "nope")

    r = c.patch("/api/devices/spk-27697-1", json={"admin_state": "disabled"})
    assert r.status_code == 200 and r.get_json()["admin_state"] == "disabled"
    assert ids(c.get("/api/devices?admin_state=disabled")) == ["spk-27697-1"]
    assert_error(c.patch("/api/devices/spk-27697-1", json={"admin_state": "off"}), 422, "json", "admin_state")
    assert_error(c.patch("/api/devices/spk-27697-1", json={"admin_state": "enabled", "name": "x"}),
                 422, "json", "name")

    # a disabled device in a target fails at once, the others queue
    r = c.post("/api/commands", json={"verb": "stop", "target": {"devices": ["spk-27697-1", "spk-27694-1"]}})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["counts"]["failed"] == 1 and r.get_json()["counts"]["queued"] == 1

    assert c.delete("/api/devices/spk-27697-1").status_code == 204
    assert_error(c.get("/api/devices/spk-27697-1"), 404, "path", "id", "spk-27697-1")
    assert_error(c.delete("/api/devices/spk-27697-1"), 404)
    with rt.db.session() as s:
        actions = set(s.scalars(select(AuditEntry.action)))
    assert {"device.create", "device.update", "device.disable", "device.delete", "command.submit"} <= actions


# -- bad input never gives a 500 ------------------------------------------------------------------
SET_VOLUME = {"verb": "set_volume", "params": {"level": 30}, "target": {"areas": ["794"]}}


@pytest.mark.parametrize("case", [
    "malformed_json", "not_utf8", "wrong_content_type", "no_content_type", "unknown_verb", "unknown_area",
    "volume_150", "missing_target", "empty_target", "unknown_device_in_target", "unknown_field",
    "json_list", "expired", "unknown_content",
])
def test_bad_command_input_names_the_problem(rt: Runtime, seeded: FlaskClient, case: str) -> None:
    c = seeded
    post = lambda body: c.post("/api/commands", json=body)  # noqa: E731
    if case == "malformed_json":
        assert_error(c.post("/api/commands", data='{"verb": "stop",', content_type="application/json"),
                     400, "json", "_body", "request body is not valid JSON")
    elif case == "not_utf8":
        assert_error(c.post("/api/commands", data=b'{"verb": "\xff"}', content_type="application/json"),
                     400, "json", "_body", "not valid JSON")
    elif case == "wrong_content_type":
        assert_error(c.post("/api/commands", data=json.dumps(SET_VOLUME), content_type="text/plain"),
                     415, "json", "_body", "application/json")
    elif case == "no_content_type":
        assert_error(c.post("/api/commands", data=json.dumps(SET_VOLUME)), 415, "json", "_body")
    elif case == "unknown_verb":
        assert_error(post({**SET_VOLUME, "verb": "explode"}), 422, "json", "verb", "Must be one of")
    elif case == "unknown_area":
        body = assert_error(post({**SET_VOLUME, "target": {"areas": ["99999"]}}), 422, "json", "target.areas")
        assert "99999" in body["message"]
    elif case == "volume_150":
        body = assert_error(post({**SET_VOLUME, "params": {"level": 150}}), 422, "json", "params")
        assert "level" in body["errors"]["json"]["params"]
        assert "json.params.level" in body["message"]
    elif case == "missing_target":
        assert_error(post({"verb": "stop"}), 422, "json", "target", "Missing data")
    elif case == "empty_target":
        body = assert_error(post({"verb": "stop", "target": {}}), 422, "json", "target")
        assert "areas" in body["errors"]["json"]["target"]
    elif case == "unknown_device_in_target":
        assert_error(post({"verb": "stop", "target": {"devices": ["ghost"]}}), 422, "json", "target.devices",
                     "ghost")
    elif case == "unknown_field":
        assert_error(post({**SET_VOLUME, "colour": "red"}), 422, "json", "colour")
    elif case == "json_list":
        assert_error(post([SET_VOLUME]), 422, "json", "_schema", "must be a JSON object")
    elif case == "expired":
        assert_error(post({**SET_VOLUME, "expires_at": "2001-01-01T00:00:00+00:00"}), 422, "json", "expires_at")
    elif case == "unknown_content":
        assert_error(post({"verb": "play", "content_id": "nope", "target": {"areas": ["794"]}}),
                     422, "json", "content_id", "nope")
    assert command_rows(rt) == 0


def test_bad_registry_input_names_the_problem(seeded: FlaskClient, vendors: dict[str, str]) -> None:
    c = seeded
    good = device_body(vendors, "spk-new", "speaker", "27694")
    assert_error(c.post("/api/devices", json={**good, "vendor": "acme"}), 422, "json", "vendor", "acme")
    assert_error(c.post("/api/devices", json={**good, "id": "spk-27694-1"}), 409, "json", "id", "already exists")
    assert_error(c.post("/api/devices", json={**good, "address": "addr-spk-27694-1"}), 409, "json", "address")
    assert_error(c.post("/api/devices", json={**good, "area_code": "99999"}), 422, "json", "area_code", "99999")
    assert_error(c.post("/api/devices", json={**good, "kind": "siren"}), 422, "json", "kind")
    assert_error(c.post("/api/devices", json={**good, "id": "bad id!"}), 422, "json", "id")
    assert_error(c.post("/api/devices", json={**good, "capabilities": ["audio.teleport"]}),
                 422, "json", "capabilities")
    assert_error(c.post("/api/devices", json={**good, "tags": "market"}), 422, "json", "tags")
    assert_error(c.get("/api/devices/ghost"), 404, "path", "id", "ghost")
    assert_error(c.get("/api/devices?area=99999"), 422, "query", "area", "99999")
    assert_error(c.get("/api/devices?aera=794"), 422, "query", "aera")
    assert_error(c.get("/api/devices?online=maybe"), 422, "query", "online")
    assert_error(c.get("/api/devices?page_size=1001"), 422, "query", "page_size")
    assert_error(c.get("/api/nowhere"), 404)
    r = c.delete("/api/devices")
    assert_error(r, 405)
    assert "GET" in r.headers["Allow"]
    assert_error(c.post("/api/groups", json={"id": "g1", "name": "G", "devices": ["ghost"]}),
                 422, "json", "devices", "ghost")
    assert_error(c.post("/api/areas", json={"code": "X1", "name": "Thôn X", "parent_code": "nope"}),
                 422, "json", "parent_code")
    assert_error(c.post("/api/areas", json={"code": "794", "name": "again", "parent_code": "80"}),
                 409, "json", "code")
    assert_error(c.post("/api/contents", json={"title": "Tin", "kind": "tts_text"}), 422, "json", "body")
    assert_error(c.get("/api/areas/nope"), 404, "path", "id", "nope")
    assert_error(c.get("/api/commands/nope"), 404, "path", "id", "nope")
    assert_error(c.get("/api/commands/nope/deliveries"), 404, "path", "id", "nope")


def test_unexpected_error_is_json_without_traceback(rt: Runtime, client: FlaskClient,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(rt.plugins, "describe", boom)
    body = assert_error(client.get("/api/plugins"), 500)
    assert "secret" not in json.dumps(body) and "Traceback" not in json.dumps(body)


# -- commands -------------------------------------------------------------------------------------
def test_command_counts_every_selected_device_queued(rt: Runtime, seeded: FlaskClient) -> None:
    c = seeded
    r = c.post("/api/commands", json={"verb": "set_volume", "params": {"level": 55},
                                      "target": {"areas": ["794"], "kinds": ["speaker"]}})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert set(body["counts"]) == set(DELIVERY_STATES)
    assert body["total"] == 3 and body["counts"]["queued"] == 3
    assert sum(body["counts"].values()) == 3
    assert body["verb"] == "set_volume" and body["priority"] == "normal" and body["replayed"] is False
    assert body["expires_at"] and body["issuer"] == "local-admin" and body["params"] == {"level": 55}

    got = c.get(f"/api/commands/{body['id']}").get_json()
    assert got["counts"] == body["counts"] and got["total"] == 3
    rows = c.get(f"/api/commands/{body['id']}/deliveries").get_json()
    assert [d["device_id"] for d in rows] == ["spk-27694-1", "spk-27694-2", "spk-27697-1"]
    assert {d["state"] for d in rows} == {"queued"}
    assert set(rows[0]) == {"command_id", "device_id", "device", "commune", "vendor", "state", "reason", "attempts",
                            "queued_at", "sent_at", "finished_at", "result"}
    assert c.get(f"/api/commands/{body['id']}/deliveries?state=acked").get_json() == []
    assert_error(c.get(f"/api/commands/{body['id']}/deliveries?state=lost"), 422, "query", "state")
    assert [x["id"] for x in c.get("/api/commands").get_json()] == [body["id"]]

    # jobs really went to Redis, one per vendor batch
    assert len(rt.queue("normal")) >= 1


def test_idempotency_key_replays_and_conflicts(rt: Runtime, seeded: FlaskClient) -> None:
    c = seeded
    cmd = {"verb": "set_volume", "params": {"level": 20}, "idempotency_key": "op-2025-07-01-001",
           "target": {"areas": ["27694"], "kinds": ["speaker"]}}
    first = c.post("/api/commands", json=cmd)
    assert first.status_code == 201, first.get_json()
    second = c.post("/api/commands", json=cmd)
    assert second.status_code == 200, second.get_json()
    assert second.get_json()["replayed"] is True and second.get_json()["id"] == first.get_json()["id"]
    assert second.get_json()["counts"] == first.get_json()["counts"]
    assert command_rows(rt) == 1
    assert_error(c.post("/api/commands", json={**cmd, "params": {"level": 90}}),
                 409, "json", "idempotency_key", "different command")
    assert command_rows(rt) == 1


def test_verb_a_device_lacks_is_unsupported(rt: Runtime, seeded: FlaskClient) -> None:
    c = seeded
    r = c.post("/api/commands", json={"verb": "led_show", "params": {"text": "Thông báo cắt điện"},
                                      "target": {"areas": ["27694"]}})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["total"] == 3 and body["counts"]["unsupported"] == 2
    rows = {d["device_id"]: d for d in c.get(f"/api/commands/{body['id']}/deliveries").get_json()}
    for spk in ("spk-27694-1", "spk-27694-2"):
        assert rows[spk]["state"] == "unsupported" and "led.text" in rows[spk]["reason"]
    led = c.get("/api/devices/led-27694-1").get_json()
    assert rows["led-27694-1"]["state"] == ("queued" if "led.text" in led["capabilities"] else "unsupported")
    only_unsupported = c.get(f"/api/commands/{body['id']}/deliveries?state=unsupported").get_json()
    assert sorted(d["device_id"] for d in only_unsupported) == ["spk-27694-1", "spk-27694-2"]


# -- a restricted actor ---------------------------------------------------------------------------
def test_restricted_actor_sees_and_commands_only_its_commune(rt: Runtime, seeded: FlaskClient,
                                                              vendors: dict[str, str]) -> None:
    admin = seeded
    # An administrator of one commune: roles are the permission table's business
    # (tests/security/test_role_area_matrix.py); this is about areas, for reads, commands and every
    # kind of write.
    op = restricted_client(rt, "27694", roles=("administrator",))
    assert ids(op.get("/api/devices")) == ["led-27694-1", "spk-27694-1", "spk-27694-2"]
    assert ids(op.get("/api/devices?area=794")) == ["led-27694-1", "spk-27694-1", "spk-27694-2"]
    assert ids(op.get("/api/devices?area=28099")) == []
    assert_error(op.get("/api/devices/spk-28099-1"), 404, "path", "id")
    assert [a["code"] for a in op.get("/api/areas").get_json()] == ["27694"]
    assert_error(op.get("/api/areas/794"), 404)
    assert op.get("/api/health").get_json()["devices"]["total"] == 3

    before = command_rows(rt)
    for target in ({"areas": ["28099"]}, {"devices": ["spk-28099-1"]}, {"areas": ["794"]},
                   {"areas": ["27694"], "devices": ["spk-27697-1"]}):
        body = assert_error(op.post("/api/commands", json={"verb": "stop", "target": target}),
                            403, "json", "target", "outside the areas of commune-op")
    assert command_rows(rt) == before
    with rt.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0
    assert body["code"] == 403

    ok = op.post("/api/commands", json={"verb": "stop", "target": {"areas": ["27694"], "kinds": ["speaker"]}})
    assert ok.status_code == 201 and ok.get_json()["issuer"] == "commune-op"
    assert ok.get_json()["counts"]["queued"] == 2

    # writes outside its commune are refused, inside allowed
    assert_error(op.post("/api/devices", json=device_body(vendors, "spk-x", "speaker", "28099")),
                 403, "json", "area_code")
    assert_error(op.put("/api/devices/spk-27694-2",
                        json=device_body(vendors, "spk-27694-2", "speaker", "27697")), 403, "json", "area_code")
    assert_error(op.delete("/api/devices/spk-28099-1"), 404)
    assert op.post("/api/devices", json=device_body(vendors, "spk-27694-3", "speaker", "27694")).status_code == 201
    assert_error(op.post("/api/areas", json={"code": "T9", "name": "Thôn 9", "parent_code": "28099"}),
                 403, "json", "parent_code")
    assert op.post("/api/areas", json={"code": "27694-K1", "name": "Khu phố 1", "type": "village",
                                       "parent_code": "27694"}).status_code == 201
    assert_error(op.post("/api/groups", json={"id": "g-mixed", "name": "Hỗn hợp",
                                              "devices": ["spk-27694-1", "spk-28099-1"]}), 403, "json", "devices")
    assert op.post("/api/groups", json={"id": "g-p1", "name": "Chợ phường 1", "area_code": "27694",
                                        "devices": ["spk-27694-1", "led-27694-1"]}).status_code == 201

    # commands: its own, plus the administrator's that reach its commune, with only its deliveries
    wide = admin.post("/api/commands", json={"verb": "stop", "target": {"areas": ["80"], "kinds": ["speaker"]}})
    far = admin.post("/api/commands", json={"verb": "stop", "target": {"areas": ["28099"]}})
    assert wide.status_code == far.status_code == 201
    seen = {x["id"] for x in op.get("/api/commands").get_json()}
    assert seen == {ok.get_json()["id"], wide.get_json()["id"]}
    assert_error(op.get(f"/api/commands/{far.get_json()['id']}"), 404)
    mine = op.get(f"/api/commands/{wide.get_json()['id']}/deliveries").get_json()
    assert sorted(d["device_id"] for d in mine) == ["spk-27694-1", "spk-27694-2", "spk-27694-3"]
    assert sum(op.get(f"/api/commands/{wide.get_json()['id']}").get_json()["counts"].values()) == 3


def test_authenticator_refusals_are_json(rt: Runtime, legacy_areas: None) -> None:
    from werkzeug.exceptions import Unauthorized

    from hub.access.actors import Forbidden

    def anonymous(_req: Any) -> Actor:
        raise Unauthorized("sign in first")

    def banned(_req: Any) -> Actor:
        raise Forbidden("account suspended")

    assert_error(create_app(rt, authenticator=anonymous).test_client().get("/api/devices"), 401,
                 contains="sign in first")
    assert_error(create_app(rt, authenticator=banned).test_client().post("/api/commands", json=SET_VOLUME), 403,
                 contains="account suspended")
    # the API's own description stays readable without an account
    assert create_app(rt, authenticator=anonymous).test_client().get("/api/openapi.json").status_code == 200
    assert command_rows(rt) == 0


def test_restricted_actor_with_unknown_area_is_refused(rt: Runtime, seeded: FlaskClient) -> None:
    op = restricted_client(rt, "00000", name="lost-op")
    assert_error(op.get("/api/devices"), 403, contains="00000")


# -- groups, contents, areas, plugins -------------------------------------------------------------
def test_groups_crud_and_targeting(seeded: FlaskClient) -> None:
    c = seeded
    g = {"id": "cho-p1", "name": "Loa chợ Phường 1", "area_code": "27694", "devices": ["spk-27694-1", "spk-27694-2"]}
    r = c.post("/api/groups", json=g)
    assert r.status_code == 201 and r.get_json()["devices"] == ["spk-27694-1", "spk-27694-2"]
    assert_error(c.post("/api/groups", json=g), 409, "json", "id")
    assert c.get("/api/groups/cho-p1").get_json()["name"] == "Loa chợ Phường 1"
    r = c.put("/api/groups/cho-p1", json={"name": "Chợ", "devices": ["spk-27694-1"]})
    assert r.status_code == 200 and r.get_json() == {"id": "cho-p1", "name": "Chợ", "area_code": None,
                                                     "devices": ["spk-27694-1"]}
    assert [x["id"] for x in c.get("/api/groups?device=spk-27694-1").get_json()] == ["cho-p1"]
    cmd = c.post("/api/commands", json={"verb": "stop", "target": {"groups": ["cho-p1"]}}).get_json()
    assert cmd["total"] == 1
    assert c.delete("/api/groups/cho-p1").status_code == 204
    assert_error(c.get("/api/groups/cho-p1"), 404)


def test_contents_and_play(seeded: FlaskClient) -> None:
    c = seeded
    # the local administrator publishes at once: only a published content is played (test_content_workflow.py)
    r = c.post("/api/contents", json={"title": "Lịch tiêm chủng", "kind": "audio_file", "priority": "priority",
                                      "media": {"uri": "http://127.0.0.1/a.mp3", "duration_s": 60}, "publish": True})
    assert r.status_code == 201, r.get_json()
    content = r.get_json()
    assert content["status"] == "published"
    assert len(content["id"]) == 32 and content["created_by"] == "local-admin"
    assert c.get(f"/api/contents/{content['id']}").get_json()["title"] == "Lịch tiêm chủng"
    assert [x["id"] for x in c.get("/api/contents?kind=audio_file").get_json()] == [content["id"]]
    assert c.get("/api/contents?kind=led_text").get_json() == []
    assert_error(c.get("/api/contents/nope"), 404, "path", "id")
    cmd = c.post("/api/commands", json={"verb": "play", "content_id": content["id"],
                                        "target": {"areas": ["28099"]}}).get_json()
    assert cmd["priority"] == "priority" and cmd["counts"]["queued"] == 2


def test_areas_list_get_create(seeded: FlaskClient) -> None:
    c = seeded
    r = c.get("/api/areas?parent=794")
    assert [a["code"] for a in r.get_json()] == ["27694", "27697"]
    assert [a["code"] for a in c.get("/api/areas?type=district").get_json()] == ["794", "807"]
    assert [a["code"] for a in c.get("/api/areas?q=long").get_json()] == ["80", "28099"]
    a = c.get("/api/areas/794").get_json()
    assert a["children"] == 2 and a["path"] == "/80/794/" and a["name"] == "Thành phố Tân An"
    r = c.post("/api/areas", json={"code": "28099-A2", "name": "Ấp 2", "type": "village", "parent_code": "28099"})
    assert r.status_code == 201 and r.get_json()["path"] == "/80/807/28099/28099-A2/"
    assert c.get("/api/areas/28099").get_json()["children"] == 2
    meta = json.loads(c.get("/api/areas?page_size=3").headers["X-Pagination"])
    assert meta["total"] == 8 and meta["total_pages"] == 3


def test_plugins_and_capabilities(seeded: FlaskClient, vendors: dict[str, str]) -> None:
    c = seeded
    plugins = c.get("/api/plugins").get_json()
    names = {v["name"] for p in plugins for v in p.get("vendors", [])}
    assert set(vendors.values()) <= names
    caps = c.get("/api/capabilities").get_json()
    assert "audio.volume" in caps["capabilities"] and caps["verbs"]["led_show"] == ["led.text"]
    assert caps["device_kinds"] == ["speaker", "led_board"]


GARBAGE: list[Any] = [None, 0, -1, 10**30, 1.5, "", "x" * 5000, "\x00", "Ấp", [], [None], [{}], {}, {"a": {"b": [1]}},
                      True, "2001-01-01T00:00:00", "2001-01-01T00:00:00+00:00"]
BODIES = {
    "/api/commands": SET_VOLUME,
    "/api/devices": {"id": "g-1", "vendor": "fake_vendor", "kind": "speaker", "area_code": "27694",
                     "address": "garbage-1"},
    "/api/groups": {"id": "g-1", "name": "G", "area_code": "27694", "devices": ["spk-27694-1"]},
    "/api/contents": {"title": "T", "kind": "tts_text", "body": "Xin chào"},
    "/api/areas": {"code": "g-1", "name": "G", "parent_code": "27694"},
}


def test_garbage_never_gives_500(rt: Runtime, seeded: FlaskClient, vendors: dict[str, str]) -> None:
    c = seeded
    bodies = {**BODIES, "/api/devices": {**BODIES["/api/devices"], "vendor": vendors["speaker"]}}
    assert c.post("/api/devices", json=bodies["/api/devices"]).status_code == 201  # the base body is valid
    c.delete("/api/devices/g-1")
    for url, good in bodies.items():
        for key in list(good) + ["params", "target", "expires_at", "priority", "media", "capabilities", "tags"]:
            for value in GARBAGE:
                body = {**good, key: value}
                if key == "target" and isinstance(value, dict):
                    body[key] = {"areas": value}
                for method in ("post", "put") if url == "/api/devices" else ("post",):
                    target = url if method == "post" else "/api/devices/spk-27694-1"
                    r = getattr(c, method)(target, json=body)
                    assert r.status_code < 500, (method, target, body, r.get_json())
                    assert r.is_json and set(r.get_json()) >= {"code", "message"} if r.status_code >= 400 else True
    for raw in (b"", b"null", b"[]", b"\"text\"", b"1e999", b"{\"a\":" * 2000, b"\xef\xbb\xbf{}", b"{}{}",
                b'{"params": {"level": NaN}}', b"[" * 40 + b"]" * 40):
        for url in BODIES:
            r = c.post(url, data=raw, content_type="application/json")
            assert 400 <= r.status_code < 500 and r.get_json()["message"], (url, raw[:20], r.get_json())
    for query in ("page=99999999999999999999999", "page=-1", "page_size=0", "page=abc", "online=2", "tag=",
                  "area=%00", "kind=", "admin_state=x", "q=%25_", "state=queued"):
        for url in ("/api/devices", "/api/areas", "/api/groups", "/api/contents", "/api/commands"):
            r = c.get(f"{url}?{query}")
            assert r.status_code < 500, (url, query, r.get_json())
    for url in ("/api/devices/%00", "/api/areas/..%2F..", "/api/commands/" + "x" * 3000,
                "/api/devices/spk-27694-1/status/extra"):
        r = c.get(url)
        assert 400 <= r.status_code < 500 and r.is_json, (url, r.status_code)
    r = c.patch("/api/devices/spk-27694-1", json={"admin_state": None})
    assert r.status_code == 422
