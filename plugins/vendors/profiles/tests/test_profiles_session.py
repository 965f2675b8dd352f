"""The MQTT driver's listener keeps a persistent session: replies and reports devices publish
while it reconnects (a broker restart) are queued by the broker and still reach the hub, while
echoes, which send() waits for, keep arriving on the sending connection. Every test runs its own
Mosquitto (persistent, on a free loopback port); the shared broker is never touched."""
from __future__ import annotations

import ctypes
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from hub.testing import HubHarness, RecordingSink
from hub.vendor import Outcome

from hub_profiles.mqtt_sim import ProfileMqttFleet
from hub_profiles.validate import load_file
from profiles_helpers import builtin, envelope, free_port, outgoing, profiles_plugins, wait_until, write_profile
from test_profiles_mqtt import BOARD


def _die_with_parent() -> None:  # in the child before exec: a killed test run leaves no broker
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class OwnBroker:
    """Mosquitto with persistence (as in production) on 127.0.0.1:<free port>; halt() and
    start() restart the same broker, sessions and queues kept."""

    def __init__(self, directory: Path) -> None:
        if shutil.which("mosquitto") is None:
            pytest.skip("the mosquitto binary is not installed")
        self.port, self.dir = free_port(), directory
        self.dir.mkdir()
        (self.dir / "mosquitto.conf").write_text("\n".join([
            f"user {pwd.getpwuid(os.geteuid()).pw_name}", f"listener {self.port} 127.0.0.1",
            "allow_anonymous true", "max_queued_messages 0", "persistence true",
            f"persistence_location {self.dir}/", f"log_dest file {self.dir}/mosquitto.log"]) + "\n")
        self._proc: subprocess.Popen[bytes] | None = None

    def _open(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.3).close()
            return True
        except OSError:
            return False

    def start(self) -> None:
        self._proc = subprocess.Popen(["mosquitto", "-c", str(self.dir / "mosquitto.conf")], preexec_fn=_die_with_parent,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(lambda: self._open() or self._proc.poll() is not None, 10) and self._proc.poll() is None

    def halt(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()  # SIGTERM: a persistent broker saves its sessions
            proc.wait(10)
        assert wait_until(lambda: not self._open(), 10)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[OwnBroker]:
    broker = OwnBroker(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.halt()


def publish(port: int, messages: list[tuple[str, bytes, bool]]) -> None:
    """Publish (topic, payload, retain) at QoS 1 as a device would, and wait for the PUBACKs."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hubtest-dev-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for info in [client.publish(t, p, qos=1, retain=r) for t, p, r in messages]:
            info.wait_for_publish(5)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def restart_while_listener_away(broker: OwnBroker, listener: Any, then: Callable[[], None]) -> None:
    """Restart the broker and run `then` (devices publishing) before the listener is back: its
    first retry comes 1 s after the loss, the next 2 s later."""
    broker.halt()
    time.sleep(1.3)
    broker.start()
    assert not listener.wait_ready(0), "precondition: the listener must still be away"
    then()


def test_a_reply_ack_published_while_the_broker_restarts_ends_acked(
        tmp_path: Path, profile_dir: Path, own_broker: OwnBroker) -> None:
    write_profile(profile_dir, "reply_board.yaml", BOARD)
    prefix, address = f"hubtest/{uuid.uuid4().hex[:8]}", f"led{uuid.uuid4().hex[:6]}"
    config = {"host": "127.0.0.1", "port": own_broker.port, "topic_prefix": prefix, "connect_timeout_s": 2}
    with HubHarness(tmp_path, "reply_board", config, plugins=profiles_plugins(), default_ttl_s=120) as hub:
        hub.add_device("L1", address, kind="led_board")
        listener = hub.ingest.adapters["reply_board"]
        assert listener.wait_ready(5)
        sub = hub.send("led_show", ["L1"], {"text": "Họp dân lúc 19h", "duration_s": 30})
        assert wait_until(lambda: hub.outcomes(sub.command.id)["L1"].state == "sent", 10)
        reply = json.dumps({"result": {"id": sub.command.id, "status": "done"}}).encode()
        restart_while_listener_away(own_broker, listener,
                                    lambda: publish(own_broker.port, [(f"{prefix}/{address}/ack", reply, False)]))
        # With a clean session the reply was lost and the delivery would end expired.
        assert wait_until(lambda: hub.outcomes(sub.command.id)["L1"].state == "acked", 15), hub.outcomes(sub.command.id)


def test_reports_during_a_restart_reach_the_listener_and_echoes_still_confirm_sends(own_broker: OwnBroker) -> None:
    prefix, token = f"hubtest/{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:6]
    quiet, amp = f"q{token}", f"amp{token}"
    cls = profiles_plugins().vendors()["tasmota_amp"]
    config = {"host": "127.0.0.1", "port": own_broker.port, "topic_prefix": prefix, "connect_timeout_s": 2}
    # As deployed: a worker that only sends (and waits for echoes), an ingest that listens.
    worker, ingest, sink = cls(config), cls(config), RecordingSink()
    fleet: ProfileMqttFleet | None = None
    try:
        worker.open()
        ingest.open()
        ingest.listen(sink)
        assert ingest.wait_ready(5)
        state = json.dumps({"POWER": "ON", "Volume": 15, "Wifi": {"RSSI": 50, "Signal": -75}}).encode()
        restart_while_listener_away(own_broker, ingest, lambda: publish(own_broker.port, [
            (f"{prefix}/tele/{quiet}/STATE", state, False), (f"{prefix}/tele/{quiet}/LWT", b"Online", False)]))
        assert sink.wait(lambda: sink.statuses_for(quiet) and sink.presence_for(quiet), 15)
        assert sink.statuses_for(quiet)[0]["volume"] == 100 and sink.presence_for(quiet) == [True]

        # Echoes are heard by the sending connection, which renewed its subscription on reconnect.
        fleet = ProfileMqttFleet(builtin("tasmota_amp"), "127.0.0.1", own_broker.port, prefix, [amp],
                                 status_interval=30)
        fleet.start(timeout=15)
        assert wait_until(lambda: worker.health().ok, 10), worker.health()
        [res] = worker.send([outgoing(amp, envelope("power", {"on": True}))])
        assert res.outcome is Outcome.ACKED and res.detail == {"power": True}, res
        [res] = ingest.send([outgoing(amp, envelope("set_volume", {"level": 0}))])
        assert res.outcome is Outcome.ACKED, res
        assert ingest.health().ok, ingest.health()
    finally:
        if fleet is not None:
            fleet.stop(clear_retained=True)
        worker.close()
        ingest.close()


def test_the_listener_id_is_stable_and_a_deliberate_close_ends_its_session(own_broker: OwnBroker) -> None:
    cls = profiles_plugins().vendors()["tasmota_amp"]
    prefix = f"hubtest/{uuid.uuid4().hex[:8]}"
    config = {"host": "127.0.0.1", "port": own_broker.port, "topic_prefix": prefix}
    first = cls(config)
    first.listen(RecordingSink())
    assert first.wait_ready(5)
    default_id = first.listener_client_id
    assert default_id is not None and default_id.startswith(f"hub-prof-tasmota_amp-{prefix}-listener-")
    first.close()
    second = cls(config)  # the same host's next listener takes the freed slot: the same session
    second.listen(RecordingSink())
    try:
        assert second.listener_client_id == default_id
    finally:
        second.close()

    listener_id = f"hubtest-listener-{uuid.uuid4().hex[:8]}"
    adapter = cls({**config, "listener_client_id": listener_id})
    adapter.open()
    adapter.listen(RecordingSink())
    assert adapter.wait_ready(5) and adapter.listener_client_id == listener_id
    adapter.close()
    present: list[bool] = []
    probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=listener_id, protocol=mqtt.MQTTv311,
                        clean_session=False)
    probe.on_connect = lambda c, u, flags, rc, p: present.append(flags.session_present)
    probe.connect("127.0.0.1", own_broker.port)
    probe.loop_start()
    try:
        assert wait_until(lambda: bool(present), 5)
        assert present == [False]  # no session left queueing reports for nobody
    finally:
        probe.disconnect()
        probe.loop_stop()


def test_an_empty_listener_client_id_is_refused_in_one_line() -> None:
    cls = profiles_plugins().vendors()["tasmota_amp"]
    with pytest.raises(ValueError) as err:
        cls({"listener_client_id": ""})
    assert "listener_client_id" in str(err.value) and "\n" not in str(err.value)


def test_a_profile_with_nothing_to_hear_opens_no_listener(profile_dir: Path) -> None:
    reply_ack = ('  ack: {mode: reply, topic: "{prefix}/{address}/ack", id: result.id, ok: result.status, '
                 'ok_values: [done],\n        error: result.error}\n')
    assert reply_ack in BOARD
    write_profile(profile_dir, "mute_board.yaml",
                  BOARD.replace("name: reply_board", "name: mute_board").replace(reply_ack, ""))
    profile, errors = load_file(profile_dir / "mute_board.yaml")
    assert profile is not None, errors
    adapter = profiles_plugins().vendors()["mute_board"]({"port": free_port()})  # no broker needed
    adapter.listen(RecordingSink())
    assert adapter.wait_ready(0) and adapter.listener_client_id is None
    adapter.close()
