"""The listener's persistent session: acks devices publish while the hub's listener is away (a
broker restart, the ingest process killed) are queued by the broker and still reach the hub.
Every test runs its own Mosquitto on a free loopback port; the shared one is never touched."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from hub.plugins import Plugins
from hub.testing import HubHarness

from hub_mqtt_speaker.adapter import MqttSpeakerAdapter
from hub_mqtt_speaker.broker import PrivateMosquitto
from hub_mqtt_speaker.device import SimDevice
from hub_mqtt_speaker.simulator import Fleet
from mqtt_speaker_helpers import RecordingSink, wait_until


@pytest.fixture
def own_broker() -> Iterator[PrivateMosquitto]:
    # persistent, as production.conf: sessions and their queues survive the broker's restart
    broker = PrivateMosquitto(persistent=True).start()
    yield broker
    broker.stop()


def publish_acks(port: int, prefix: str, acks: dict[str, str], volume: int | None = None) -> None:
    """Publish one ack per device address (as the devices would), QoS 1, and wait for PUBACKs."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hubtest-dev-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        state = {"volume": volume} if volume is not None else None
        infos = [client.publish(f"{prefix}/{address}/ack",
                                json.dumps({"id": cid, "ok": True, "error": None, "state": state}), qos=1)
                 for address, cid in acks.items()]
        for info in infos:
            info.wait_for_publish(5)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def test_acks_published_while_the_broker_restarts_end_acked(tmp_path: Path, own_broker: PrivateMosquitto) -> None:
    prefix = f"hubtest/{uuid.uuid4().hex[:8]}"
    config = {"host": "127.0.0.1", "port": own_broker.port, "topic_prefix": prefix, "connect_timeout_s": 2}
    plugins = Plugins()
    plugins.load_entry_points(only={"mqtt_speaker"})
    addresses = [f"P{n}-{uuid.uuid4().hex[:6]}" for n in range(3)]
    # silent devices act on the command but never ack: the test acks for them at the moment that
    # matters, after the restart and before the hub's listener is back
    fleet = Fleet("127.0.0.1", own_broker.port, prefix, [SimDevice(a, silent=True) for a in addresses],
                  status_interval=30)
    with HubHarness(tmp_path, "mqtt_speaker", config, plugins=plugins, default_ttl_s=120) as hub:
        try:
            fleet.start(timeout=15)
            ids = [hub.add_device(f"S{n}", a) for n, a in enumerate(addresses)]
            listener = hub.ingest.adapters["mqtt_speaker"]
            assert listener.wait_subscribed(5)
            sub = hub.send("set_volume", ids, {"level": 35})
            assert wait_until(lambda: all(fleet.device(a).volume == 35 for a in addresses), 5)

            own_broker.halt()
            # Down long enough that the listener's first retry (after 1 s) fails and its next one
            # comes 2 s later: the acks below land in that window.
            time.sleep(1.3)
            own_broker.start()
            assert not listener.wait_subscribed(0), "precondition: the listener must still be away"
            publish_acks(own_broker.port, prefix, {a: sub.command.id for a in addresses}, volume=35)

            def states() -> dict[str, str]:
                return {d: o.state for d, o in hub.outcomes(sub.command.id).items()}

            # With a clean session these acks were lost and the rows would end `expired`.
            assert wait_until(lambda: set(states().values()) == {"acked"}, 15), states()
        finally:
            fleet.stop(timeout=5)


LISTENER_SCRIPT = """
import sys, time
from hub_mqtt_speaker.adapter import MqttSpeakerAdapter
class Sink:
    def ack(self, vendor, address, ack):
        print("ACK", address, ack.command_id, flush=True)
    def status(self, *a): pass
    def presence(self, *a): pass
a = MqttSpeakerAdapter({"host": "127.0.0.1", "port": int(sys.argv[1]), "topic_prefix": sys.argv[2]})
a.open()
a.listen(Sink())
assert a.wait_subscribed(10)
print("READY", a.listener_client_id, flush=True)
time.sleep(60)
"""


def _start_listener(port: int, prefix: str) -> tuple[subprocess.Popen[str], list[str], str]:
    """A listening adapter in a process of its own; its output lines are collected in a list."""
    proc = subprocess.Popen([sys.executable, "-c", LISTENER_SCRIPT, str(port), prefix], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(line.strip() for line in proc.stdout), daemon=True).start()
    ready = lambda: next((ln for ln in lines if ln.startswith("READY ")), None)  # noqa: E731
    if not wait_until(ready, 20):
        proc.kill()
        pytest.fail(f"listener process did not start: {lines}")
    return proc, lines, ready().split()[1]


def test_an_ingest_killed_and_restarted_on_the_same_host_gets_the_acks_sent_meanwhile(
        own_broker: PrivateMosquitto) -> None:
    prefix = f"hubtest/{uuid.uuid4().hex[:8]}"
    first, _, first_id = _start_listener(own_broker.port, prefix)
    try:
        first.send_signal(signal.SIGKILL)  # no DISCONNECT, no clean-up: a crash
        first.wait(10)
        acks = {f"K{n}": f"cmd-{uuid.uuid4().hex[:8]}" for n in range(5)}
        publish_acks(own_broker.port, prefix, acks)
        second, lines, second_id = _start_listener(own_broker.port, prefix)
        try:
            assert second_id == first_id  # the dead process's slot, so its session
            got = lambda: sorted(ln for ln in lines if ln.startswith("ACK "))  # noqa: E731
            assert wait_until(lambda: len(got()) >= len(acks), 10), lines
            assert got() == sorted(f"ACK {a} {c}" for a, c in acks.items())
        finally:
            second.kill()
            second.wait(10)
    finally:
        if first.poll() is None:
            first.kill()


def test_two_listeners_sharing_a_group_on_one_host_each_keep_their_own_session(
        own_broker: PrivateMosquitto) -> None:
    prefix = f"hubtest/{uuid.uuid4().hex[:8]}"
    config = {"host": "127.0.0.1", "port": own_broker.port, "topic_prefix": prefix, "shared_group": "ingest"}
    adapters = [MqttSpeakerAdapter(config), MqttSpeakerAdapter(config)]
    sinks = [RecordingSink(), RecordingSink()]
    try:
        for adapter, sink in zip(adapters, sinks, strict=True):
            adapter.open()
            adapter.listen(sink)
            assert adapter.wait_subscribed(5)
        assert adapters[0].listener_client_id != adapters[1].listener_client_id
        time.sleep(1.5)  # a shared id would make the broker throw one off each time the other connects
        assert all(a.health().ok for a in adapters), [a.health().detail for a in adapters]
        acks = {f"G{n}": f"cmd-{n}" for n in range(40)}
        publish_acks(own_broker.port, prefix, acks)
        assert wait_until(lambda: sum(len(s.acks) for s in sinks) >= len(acks), 10)
        heard = sorted(ack.command_id for s in sinks for _a, ack in s.acks)
        assert heard == sorted(acks.values())  # each exactly once, split between the two
        assert all(s.acks for s in sinks)
    finally:
        for adapter in adapters:
            adapter.close()


def test_a_listener_stopped_on_purpose_leaves_no_session_on_the_broker(own_broker: PrivateMosquitto) -> None:
    prefix = f"hubtest/{uuid.uuid4().hex[:8]}"
    listener_id = f"hubtest-listener-{uuid.uuid4().hex[:8]}"
    adapter = MqttSpeakerAdapter({"host": "127.0.0.1", "port": own_broker.port, "topic_prefix": prefix,
                                  "listener_client_id": listener_id})
    adapter.open()
    adapter.listen(RecordingSink())
    assert adapter.wait_subscribed(5)
    assert adapter.listener_client_id == listener_id
    adapter.close()
    # A session left behind would queue every ack for a process that may never come back (and,
    # in a $share group, swallow its share of them).
    present: list[bool] = []
    probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=listener_id, protocol=mqtt.MQTTv311,
                        clean_session=False)
    probe.on_connect = lambda c, u, flags, rc, p: present.append(flags.session_present)
    probe.connect("127.0.0.1", own_broker.port)
    probe.loop_start()
    try:
        assert wait_until(lambda: bool(present), 5)
        assert present == [False]
    finally:
        probe.disconnect()
        probe.loop_stop()


def test_an_empty_listener_client_id_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError) as err:
        MqttSpeakerAdapter({"listener_client_id": ""})
    assert "listener_client_id" in str(err.value) and "\n" not in str(err.value)
