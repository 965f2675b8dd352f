"""Helpers shared by the mqtt_speaker tests (a uniquely named module, so it cannot be
shadowed by another test suite's helpers when the whole repository is collected at once)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from hub.vendor import DeviceRef, Envelope, Outgoing
from hub.testing import RecordingSink, wait_until  # noqa: F401 - the tests import them from here
from hub.testing_fixtures import MQTT_HOST, MQTT_PORT
from hub.ports import free_port

BROKER_HOST, BROKER_PORT = MQTT_HOST, MQTT_PORT  # the broker the hub's tests use (HUB_TEST_MQTT_*)


def envelope(verb: str, params: dict[str, Any] | None = None, priority: str = "normal",
             content: dict[str, Any] | None = None, expires_in_s: float = 300.0,
             command_id: str | None = None) -> Envelope:
    return Envelope(command_id=command_id or f"cmd-{uuid.uuid4().hex[:12]}", verb=verb, params=params or {},
                    priority=priority, expires_at=datetime.now(timezone.utc) + timedelta(seconds=expires_in_s),
                    content=content)


def outgoing(address: str, env: Envelope, kind: str = "speaker", **config: Any) -> Outgoing:
    return Outgoing(DeviceRef(id=f"dev-{address}", address=address, kind=kind, config=config), env)




def clear_retained(host: str, port: int, topics: list[str]) -> None:
    """Remove retained messages a test left on the broker (its persistence outlives the test)."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hubtest-clean-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv311)
    client.connect(host, port)
    client.loop_start()
    try:
        infos = [client.publish(t, b"", qos=1, retain=True) for t in topics]
        for info in infos:
            info.wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()
