"""With a sink that confirms commits (the hub's ingest), the MQTT driver's listener acknowledges
a message to the broker only when the sink says it is stored: until then the broker keeps it in
flight on the persistent session and offers it again after a reconnection, so an ingest that
dies between hearing and storing loses nothing. A message it cannot parse is handed to the
sink's quarantine, and acknowledged once kept."""
from __future__ import annotations

import socket
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt

from profiles_helpers import BROKER_HOST, BROKER_PORT, profiles_plugins, wait_until

STATE = b'{"POWER": "ON", "Volume": 15, "Wifi": {"RSSI": 50, "Signal": -75}}'


class HoldingSink:
    """Confirms commits, and holds every `done` until the test calls it."""

    confirms_commit = True

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: list[tuple[str, Any]] = []
        self.rejected_: list[tuple[str, str, Any]] = []

    def ack(self, vendor: str, address: str, ack: Any, done: Any = None) -> None:
        pass

    def status(self, vendor: str, address: str, status: dict[str, Any], done: Any = None) -> None:
        with self.lock:
            self.statuses.append((address, done))

    def presence(self, vendor: str, address: str, online: bool, done: Any = None) -> None:
        if done is not None:
            done()

    def rejected(self, vendor: str, address: str, kind: str, payload: Any, reason: str, done: Any = None) -> None:
        with self.lock:
            self.rejected_.append((address, reason, done))


def _publish(topic: str, payload: bytes) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hubtest-dev-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv311)
    client.connect(BROKER_HOST, BROKER_PORT)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def _written(adapter: Any) -> bool:
    """paho has put every queued packet (the PUBACKs) on the wire."""
    return wait_until(lambda: not adapter._listener._out_packet, 5)


def _drop_connection(adapter: Any) -> None:
    """Cut the listener's TCP connection under paho (as a crash would, no DISCONNECT): paho
    reconnects under the same id and the broker resends what was not acknowledged."""
    was = adapter._acks._connection
    adapter._listener.socket().shutdown(socket.SHUT_RDWR)
    assert wait_until(lambda: adapter._acks._connection >= was + 2 and adapter.wait_ready(0), 15)


def test_a_status_is_acknowledged_only_once_the_sink_has_stored_it() -> None:
    prefix, address = f"hubtest/{uuid.uuid4().hex[:8]}", f"amp{uuid.uuid4().hex[:6]}"
    cls = profiles_plugins().vendors()["tasmota_amp"]
    adapter = cls({"host": BROKER_HOST, "port": BROKER_PORT, "topic_prefix": prefix, "connect_timeout_s": 2,
                   "listener_client_id": f"hubtest-listener-{uuid.uuid4().hex[:8]}"})
    sink = HoldingSink()
    adapter.listen(sink)
    try:
        assert adapter.wait_ready(10)
        _publish(f"{prefix}/tele/{address}/STATE", STATE)
        assert wait_until(lambda: len(sink.statuses) == 1, 10)
        _drop_connection(adapter)  # not confirmed: offered again
        assert wait_until(lambda: len(sink.statuses) == 2, 10), sink.statuses
        sink.statuses[1][1]()  # stored: now the broker may forget it
        assert _written(adapter)
        _drop_connection(adapter)
        assert not wait_until(lambda: len(sink.statuses) > 2, 3), sink.statuses

        _publish(f"{prefix}/tele/{address}/STATE", b"\xff not json")
        assert wait_until(lambda: len(sink.rejected_) == 1, 10)
        where, reason, done = sink.rejected_[0]
        assert where == f"{prefix}/tele/{address}/STATE" and address in reason
        done()
        assert _written(adapter)
        _drop_connection(adapter)
        assert not wait_until(lambda: len(sink.rejected_) > 1, 3)
    finally:
        adapter.close()
