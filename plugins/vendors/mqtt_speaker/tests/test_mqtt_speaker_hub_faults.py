"""Broker down, through the hub's real job: deliveries fail with the reason after the configured
retries, and once the broker is back the same worker serves the next command."""
from __future__ import annotations

import uuid
from pathlib import Path

from hub.devkit.embedded import EmbeddedBroker
from hub.plugins import Plugins
from hub.testing import HubHarness

from hub_mqtt_speaker.device import SimDevice
from hub_mqtt_speaker.simulator import Fleet


def test_broker_down_fails_with_the_reason_then_the_worker_serves_again(tmp_path: Path) -> None:
    broker = EmbeddedBroker().start()  # our own broker: the shared one must never be stopped
    prefix = f"hubtest/{uuid.uuid4().hex[:8]}"
    config = {"host": "127.0.0.1", "port": broker.port, "topic_prefix": prefix, "connect_timeout_s": 1}
    plugins = Plugins()
    plugins.load_entry_points(only={"mqtt_speaker"})
    fleet = None
    try:
        with HubHarness(tmp_path, "mqtt_speaker", config, plugins=plugins, listen=False) as hub:
            hub.add_device("S1", "s1")
            broker.stop()
            down = hub.send("set_volume", ["S1"], {"level": 20})
            got = hub.outcomes(down.command.id)["S1"]
            assert got.state == "failed" and got.attempts == 3
            assert got.reason.startswith("gave up after 3 attempts: MQTT broker 127.0.0.1:")
            assert "unreachable" in got.reason

            broker = EmbeddedBroker(port=broker.port).start()
            fleet = Fleet("127.0.0.1", broker.port, prefix, [SimDevice("s1")], status_interval=5)
            fleet.start(timeout=15)
            back = hub.send("set_volume", ["S1"], {"level": 30})
            assert hub.outcomes(back.command.id)["S1"].state == "sent"  # published; its ack goes to ingest
            assert _eventually(lambda: fleet.device("s1").volume == 30)
    finally:
        if fleet is not None:
            fleet.stop()
        broker.stop()


def _eventually(predicate, timeout: float = 5.0) -> bool:  # noqa: ANN001
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
