"""Knowledge the hub needs in many places is written once (issue 16, item 7): the delivery states,
the SQL IN-list bound, the device-status fields, the priority classes and the MQTT SUBACK handling.
The scans read hub/ as source, so a copy that creeps back fails here, naming the file and line."""
from __future__ import annotations

import ast
import glob
import json
import logging
import shutil
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
import pytest

from hub.capabilities import EMERGENCY, HIGHEST_FIRST, PRIORITIES, PRIORITY_RANK, outranks
from hub.schemas.status import KEPT_FIELDS, REPORTED_FIELDS, REPORTED_PATHS, STATUS_FIELDS
from hub.store.batching import IN_LIST_MAX, chunks
from hub.store.models import ACTIVE_STATES, DELIVERY_STATES, TERMINAL_STATES, DeliveryState, DeviceStatus
from hub.testing import RecordingSink, wait_until

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / "hub"
# The only modules that may spell a delivery state: the enum's own, and the vendor contract, whose
# Outcome ("acked", "failed") is what an adapter answers, a vocabulary of its own.
STATE_HOMES = {"hub/store/models.py", "hub/vendor.py"}


def _sources() -> Iterator[tuple[str, ast.AST]]:
    for path in sorted(HUB.rglob("*.py")):
        yield str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def state_literals(name: str, tree: ast.AST) -> list[str]:
    values = {s.value for s in DeliveryState}
    return [f"{name}:{n.lineno}: {n.value!r}" for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in values]


def _batch_size(node: ast.AST) -> bool:
    """An int literal big enough to be a batch of SQL parameters (not a [i:i + 1] of text code)."""
    return isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 100


def literal_chunking(name: str, tree: ast.AST) -> list[str]:
    """`range(0, len(x), 900)` or `x[i:i + 900]`: an IN-list bound written out again."""
    out = []
    for n in ast.walk(tree):
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "range" and len(n.args) == 3
                and _batch_size(n.args[2])):
            out.append(f"{name}:{n.lineno}: range step {n.args[2].value}")  # type: ignore[attr-defined]
        if (isinstance(n, ast.Slice) and isinstance(n.lower, ast.Name) and isinstance(n.upper, ast.BinOp)
                and isinstance(n.upper.left, ast.Name) and n.upper.left.id == n.lower.id
                and _batch_size(n.upper.right)):
            out.append(f"{name}:{n.lineno}: slice of {n.upper.right.value}")  # type: ignore[attr-defined]
    return out


@pytest.fixture
def client(rt, legacy_areas):  # noqa: ANN001, ANN201
    from hub.access.actors import local_admin
    from hub.api import create_app

    return create_app(rt, authenticator=local_admin).test_client()


# -- delivery states -----------------------------------------------------------------------------

def test_no_delivery_state_is_spelt_outside_its_enum() -> None:
    found = [hit for name, tree in _sources() if name not in STATE_HOMES for hit in state_literals(name, tree)]
    assert found == [], "use hub.store.models.DeliveryState instead of:\n" + "\n".join(found)


def test_the_scan_finds_a_planted_bare_state() -> None:
    planted = ast.parse('rows = select(Delivery).where(Delivery.state == "queued")')
    assert state_literals("planted.py", planted) == ["planted.py:1: 'queued'"]
    assert state_literals("ok.py", ast.parse("x = DeliveryState.QUEUED")) == []


def test_delivery_states_keep_their_stored_and_published_spelling() -> None:
    # what the database holds and the API answers must not change with the enum
    assert [s.value for s in DeliveryState] == ["scheduled", "queued", "sent", "acked", "failed", "expired",
                                                "unsupported", "superseded"]
    assert DELIVERY_STATES == tuple(DeliveryState) == ACTIVE_STATES + TERMINAL_STATES
    assert not set(ACTIVE_STATES) & set(TERMINAL_STATES)
    q = DeliveryState.QUEUED
    assert json.dumps({q: q}) == '{"queued": "queued"}' and f"{q}" == str(q) == "queued"
    assert {"queued": 1}[q] == 1 and q == "queued"


def test_the_api_counts_every_state_under_its_plain_name(client) -> None:  # noqa: ANN001
    r = client.get("/api/openapi.json")
    counts = r.get_json()["components"]["schemas"]["Counts"]["properties"]
    assert list(counts) == [s.value for s in DeliveryState]


# -- SQL IN lists ----------------------------------------------------------------------------------

def test_in_lists_are_cut_by_the_one_helper() -> None:
    found = [hit for name, tree in _sources() if name != "hub/store/batching.py"
             for hit in literal_chunking(name, tree)]
    assert found == [], "use hub.store.batching.chunks:\n" + "\n".join(found)


def test_the_scan_finds_a_planted_bound() -> None:
    planted = ast.parse("for i in range(0, len(ids), 900):\n    q(ids[i:i + 900])\n")
    assert literal_chunking("planted.py", planted) == ["planted.py:1: range step 900", "planted.py:2: slice of 900"]


def test_chunks_cover_everything_once_within_the_bound() -> None:
    ids = list(range(2 * IN_LIST_MAX + 1))
    parts = list(chunks(ids))
    assert [len(p) for p in parts] == [IN_LIST_MAX, IN_LIST_MAX, 1] and [x for p in parts for x in p] == ids
    assert list(chunks([])) == []
    with pytest.raises(ValueError, match="at least 1"):
        list(chunks(ids, 0))


# -- device status fields --------------------------------------------------------------------------

def test_the_status_fields_of_the_json_schema_the_table_and_the_api_agree() -> None:
    from hub.api.schemas import DeviceStatusOutSchema
    from hub.fleet.status_writer import _NEW_ROW, STATUS_FIELDS as WRITTEN

    published = json.loads((ROOT / "schemas/device-status.schema.json").read_text(encoding="utf-8"))
    assert set(published["properties"]) == set(REPORTED_FIELDS)
    signal = published["properties"]["signal"]["anyOf"][0]["properties"]
    assert {p for p in REPORTED_PATHS if p.startswith("signal.")} == {f"signal.{k}" for k in signal}
    columns = [c.name for c in DeviceStatus.__table__.columns]
    # the table holds the API's fields plus its key and the sweeper's failure count
    assert set(columns) == set(STATUS_FIELDS) | {"device_id", "consecutive_failures"}
    assert STATUS_FIELDS == REPORTED_FIELDS + KEPT_FIELDS
    assert tuple(DeviceStatusOutSchema._declared_fields) == STATUS_FIELDS
    assert WRITTEN == REPORTED_FIELDS and set(_NEW_ROW) == set(columns) - {"device_id"}


def test_the_api_answers_exactly_the_status_fields(client, rt, vendors) -> None:  # noqa: ANN001
    body = {"id": "spk-27694-9", "name": "one", "vendor": vendors["speaker"], "kind": "speaker",
            "area_code": "27694", "address": "addr-spk-27694-9"}
    assert client.post("/api/devices", json=body).status_code == 201
    with rt.db.session() as s:
        now = datetime.now(timezone.utc)
        s.add(DeviceStatus(device_id="spk-27694-9", online=True, volume=40, faults=[], reported_at=now,
                           last_seen_at=now))
    one = client.get("/api/devices/spk-27694-9").get_json()
    listed = [d for d in client.get("/api/devices").get_json() if d["id"] == "spk-27694-9"]
    status = client.get("/api/devices/spk-27694-9/status").get_json()
    # a device's own page and the list embed what it reported; /status adds what the hub keeps
    assert set(one["status"]) == set(REPORTED_FIELDS) and one["status"]["volume"] == 40
    assert len(listed) == 1 and set(listed[0]["status"]) == set(REPORTED_FIELDS)
    assert set(status) == set(STATUS_FIELDS) and status["last_seen_at"] is not None


def test_the_profiles_plugin_maps_to_the_same_status_fields() -> None:
    reader = pytest.importorskip("hub_profiles.reader")
    assert reader.STATUS_TARGETS == REPORTED_PATHS


# -- priority classes ------------------------------------------------------------------------------

def test_every_priority_list_derives_from_the_one_order() -> None:
    from hub.cli.main import cli
    from hub.runtime import QUEUE_ORDER

    assert QUEUE_ORDER == HIGHEST_FIRST == tuple(reversed(PRIORITIES))
    assert outranks("emergency", "priority") and outranks("priority", "normal") and not outranks("normal", "normal")
    assert EMERGENCY == QUEUE_ORDER[0] and sorted(PRIORITIES, key=PRIORITY_RANK.get) == list(PRIORITIES)
    send = cli.get_command(click.Context(cli), "send")  # commands come through the plugin hooks
    choice = next(p for p in send.params if p.name == "priority").type
    assert tuple(choice.choices) == PRIORITIES


def test_the_gateway_simulator_ranks_classes_as_the_hub_does() -> None:
    device = pytest.importorskip("hub_http_gateway.device")
    protocol = pytest.importorskip("hub_http_gateway.protocol")
    assert protocol.PRIORITIES == PRIORITIES and device.RANK == PRIORITY_RANK


# -- MQTT SUBACK -----------------------------------------------------------------------------------

def _dynsec_plugin() -> str | None:
    found = glob.glob("/usr/lib/*/mosquitto_dynamic_security.so") + glob.glob("/usr/lib/mosquitto*/*dynamic_security.so")
    return found[0] if found else None


@pytest.fixture
def refusing_broker(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """A Mosquitto of our own that refuses (SUBACK 0x80) every subscription but the profile's echo
    topics. Mosquitto's acl_file never refuses a SUBSCRIBE (it filters at delivery), its dynamic
    security plugin does."""
    broker_mod = pytest.importorskip("hub_mqtt_speaker.broker")
    plugin = _dynsec_plugin()
    if shutil.which("mosquitto") is None or plugin is None:
        pytest.skip("needs mosquitto and its dynamic security plugin")
    echo_prefix = f"hubtest/{uuid.uuid4().hex[:8]}"
    dynsec = {"defaultACLAccess": {"publishClientSend": True, "publishClientReceive": True, "subscribe": False,
                                   "unsubscribe": True},
              "clients": [], "anonymousGroup": "anonymous",
              "groups": [{"groupname": "anonymous", "roles": [{"rolename": "echoes"}]}],
              "roles": [{"rolename": "echoes", "acls": [{"acltype": "subscribePattern", "topic": f"{echo_prefix}/stat/#",
                                                         "priority": 0, "allow": True}]}]}

    class Refusing(broker_mod.PrivateMosquitto):  # type: ignore[misc,name-defined]
        def config_text(self) -> str:
            return super().config_text() + f"plugin {plugin}\nplugin_opt_config_file {self.dir / 'dynsec.json'}\n"

        def _write(self) -> None:
            (self.dir / "dynsec.json").write_text(json.dumps(dynsec), encoding="utf-8")
            super()._write()

    broker = Refusing().start()
    try:
        yield broker, echo_prefix
    finally:
        broker.stop()


def test_a_refused_subscription_is_reported_the_same_way_by_both_mqtt_plugins(refusing_broker, caplog) -> None:  # noqa: ANN001
    from hub.mqtt import REFUSED
    from hub.plugins import Plugins

    speaker_mod = pytest.importorskip("hub_mqtt_speaker.adapter")
    pytest.importorskip("hub_profiles")
    broker, echo_prefix = refusing_broker
    plugins = Plugins()
    plugins.load_entry_points(only={"profiles"})
    base = {"host": "127.0.0.1", "port": broker.port, "connect_timeout_s": 5}
    speaker = speaker_mod.MqttSpeakerAdapter({**base, "topic_prefix": f"hubtest/{uuid.uuid4().hex[:8]}"})
    profile = plugins.vendors()["tasmota_amp"]({**base, "topic_prefix": echo_prefix})
    caplog.set_level(logging.WARNING, logger="hub.mqtt")
    adapters = {speaker_mod.VENDOR: speaker, "tasmota_amp": profile}
    try:
        for adapter in adapters.values():
            adapter.open()  # the profile's echo subscription is granted: sending works
            adapter.listen(RecordingSink())
        for vendor, adapter in adapters.items():
            assert wait_until(lambda a=adapter: "refused" in a.health().detail, 10), f"{vendor}: {adapter.health()}"
            health = adapter.health()
            assert "broker refused subscriptions to " in health.detail, (vendor, health)
            assert f"127.0.0.1:{broker.port}" in health.detail and adapter.listener_client_id in health.detail
            warned = [r for r in caplog.records if r.name == "hub.mqtt" and r.msg == REFUSED and r.args[0] == vendor]
            assert len(warned) == 1, [r.getMessage() for r in caplog.records]
            assert warned[0].levelno == logging.WARNING
        assert not speaker.wait_subscribed(0) and not profile.wait_ready(0)
    finally:
        for adapter in adapters.values():
            adapter.close()


def test_a_refused_echo_subscription_stops_the_profile_adapter_opening(refusing_broker) -> None:  # noqa: ANN001
    pytest.importorskip("hub_profiles")
    from hub.plugins import Plugins
    from hub.vendor import TransientError

    broker, _ = refusing_broker
    plugins = Plugins()
    plugins.load_entry_points(only={"profiles"})
    profile = plugins.vendors()["tasmota_amp"]({"host": "127.0.0.1", "port": broker.port, "connect_timeout_s": 2,
                                                "topic_prefix": f"hubtest/{uuid.uuid4().hex[:8]}"})
    try:
        with pytest.raises(TransientError, match="broker refused subscriptions to .*/stat/"):
            profile.open()
    finally:
        profile.close()
