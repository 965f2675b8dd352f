"""conformance_setup: a certification run gets a Mosquitto of its own that demands credentials
(so SEC-AUTH-01 can be shown), confines the run's user to its topic prefix, opens up only when
the run injects accepts_unauthenticated, and is gone when the simulator stops."""
from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from hub.simulation import UnsupportedFault
from hub.vendor import DeviceRef

from hub_mqtt_speaker import plugin
from hub_mqtt_speaker.adapter import MqttSpeakerAdapter
from mqtt_speaker_helpers import RecordingSink, envelope, free_port, outgoing, wait_until


def connack(port: int, username: str | None, password: str | None) -> str:
    """The broker's answer to a CONNECT with these credentials."""
    got: list[str] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hubtest-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv311)
    if username is not None:
        client.username_pw_set(username, password)
    client.on_connect = lambda c, u, f, rc, p: got.append(str(rc))
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        wait_until(lambda: bool(got), 5)
        return got[0] if got else "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture
def setup() -> Iterator[dict[str, Any]]:
    got = plugin.conformance_setup(vendor="mqtt_speaker", run_id=uuid.uuid4().hex[:10])
    assert got is not None
    config = got["config"]
    yield config
    plugin._CERT_BROKERS[config["port"]].broker.stop()  # idempotent: most tests stop it themselves


def devices(token: str) -> list[DeviceRef]:
    return [DeviceRef(id="s1", address=f"SPK-{token}", kind="speaker")]


def test_the_run_broker_refuses_anonymous_and_wrong_credentials(setup: dict[str, Any]) -> None:
    port = setup["port"]
    assert setup["host"] == "127.0.0.1" and setup["topic_prefix"].startswith("hubconf/")
    assert connack(port, setup["username"], setup["password"]) == "Success"
    assert connack(port, setup["username"], "wrong") == "Not authorized"
    assert connack(port, None, None) == "Not authorized"


def test_a_certification_fleet_serves_the_hub_and_takes_the_broker_with_it(setup: dict[str, Any]) -> None:
    token = uuid.uuid4().hex[:8]
    fleet = plugin.make_fleet(setup, devices(token), status_interval=30)
    adapter = MqttSpeakerAdapter(setup)
    sink = RecordingSink()
    try:
        fleet.start(timeout=15)
        adapter.open()
        adapter.listen(sink)
        assert adapter.wait_subscribed(5)
        env = envelope("set_volume", {"level": 42})
        adapter.send([outgoing(f"SPK-{token}", env)])
        assert wait_until(lambda: any(a.command_id == env.command_id for _ad, a in sink.acks), 5)
    finally:
        adapter.close()
        fleet.stop(timeout=5, clear_retained=True)
    assert not port_open(setup["port"]), "the run's broker outlived its simulator"


def test_the_run_user_cannot_leave_its_topic_prefix(setup: dict[str, Any]) -> None:
    # The ACL: the same credentials on another prefix neither subscribe nor publish anything.
    other = dict(setup, topic_prefix=f"hubconf/other-{uuid.uuid4().hex[:6]}")
    token = uuid.uuid4().hex[:8]
    adapter = MqttSpeakerAdapter(other)
    sink = RecordingSink()
    received = threading.Event()
    spy = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hubtest-{token}", protocol=mqtt.MQTTv311)
    spy.username_pw_set(setup["username"], setup["password"])
    spy.on_message = lambda c, u, m: received.set()
    try:
        spy.connect("127.0.0.1", setup["port"])
        spy.loop_start()
        subscribed = threading.Event()
        spy.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
        spy.subscribe(f"{other['topic_prefix']}/#", qos=1)
        assert subscribed.wait(5)
        adapter.open()
        adapter.send([outgoing(f"SPK-{token}", envelope("stop"))])
        assert not received.wait(1.0)
    finally:
        adapter.close()
        spy.disconnect()
        spy.loop_stop()


def test_accepts_unauthenticated_opens_the_run_broker_when_the_simulator_starts(setup: dict[str, Any]) -> None:
    token = uuid.uuid4().hex[:8]
    refs = devices(token)
    fleet = plugin.make_fleet(setup, refs, {refs[0].address: {"accepts_unauthenticated"}}, status_interval=30)
    assert connack(setup["port"], setup["username"], "wrong") == "Not authorized"  # built, not started
    try:
        fleet.start(timeout=15)
        assert connack(setup["port"], setup["username"], "wrong") == "Success"
        assert connack(setup["port"], None, None) == "Success"
    finally:
        fleet.stop(timeout=5, clear_retained=True)
    assert not port_open(setup["port"])


def test_accepts_unauthenticated_is_refused_on_a_broker_the_simulator_does_not_own() -> None:
    config = {"host": "127.0.0.1", "port": free_port(), "topic_prefix": "hubtest/x"}
    refs = devices("x")
    with pytest.raises(UnsupportedFault, match="checked by the broker"):
        plugin.make_fleet(config, refs, {refs[0].address: {"accepts_unauthenticated"}})


def test_conformance_setup_ignores_other_vendors() -> None:
    assert plugin.conformance_setup(vendor="snapcast", run_id="x") is None
