"""Fixtures for the mqtt_speaker tests: a real Mosquitto broker, one random topic prefix per
test, and fleets/adapters that are always stopped."""
from __future__ import annotations

import faulthandler
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hub_mqtt_speaker.adapter import MqttSpeakerAdapter
from hub_mqtt_speaker.device import SimDevice
from hub_mqtt_speaker.simulator import Fleet
from mqtt_speaker_helpers import BROKER_HOST, BROKER_PORT, RecordingSink

TEST_DEADLINE_S = 180  # no single test may hang the run longer than this


@pytest.fixture(autouse=True)
def _watchdog() -> Iterator[None]:
    # pytest-timeout is not a dependency; a stuck network wait still must not hang CI for ever.
    faulthandler.dump_traceback_later(TEST_DEADLINE_S, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="session")
def broker() -> tuple[str, int]:
    try:
        socket.create_connection((BROKER_HOST, BROKER_PORT), timeout=2).close()
    except OSError as exc:
        pytest.skip(f"no MQTT broker at {BROKER_HOST}:{BROKER_PORT} ({exc}); "
                    "set HUB_TEST_MQTT_HOST/HUB_TEST_MQTT_PORT")
    return BROKER_HOST, BROKER_PORT


@pytest.fixture
def prefix() -> str:
    return f"hubtest/mqtt_speaker/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def token() -> str:
    """Makes device addresses (= MQTT client ids) unique, so parallel runs never collide."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def make_fleet(broker: tuple[str, int], prefix: str) -> Iterator[Callable[..., Fleet]]:
    fleets: list[Fleet] = []

    def make(devices: list[SimDevice], start: bool = True, timeout: float = 30.0,
             topic_prefix: str | None = None, **kw: Any) -> Fleet:
        kw.setdefault("status_interval", 5.0)
        fleet = Fleet(broker[0], broker[1], topic_prefix or prefix, devices, **kw)
        fleets.append(fleet)
        if start:
            fleet.start(timeout=timeout)
        return fleet

    yield make
    for fleet in fleets:
        fleet.stop(timeout=10, clear_retained=True)


@pytest.fixture
def make_adapter(broker: tuple[str, int], prefix: str) -> Iterator[Callable[..., MqttSpeakerAdapter]]:
    adapters: list[MqttSpeakerAdapter] = []

    def make(open_: bool = True, **config: Any) -> MqttSpeakerAdapter:
        config = {"host": broker[0], "port": broker[1], "topic_prefix": prefix, **config}
        adapter = MqttSpeakerAdapter(config)
        adapters.append(adapter)
        if open_:
            adapter.open()
        return adapter

    yield make
    for adapter in adapters:
        adapter.close()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def listening(make_adapter: Callable[..., MqttSpeakerAdapter],
              sink: RecordingSink) -> MqttSpeakerAdapter:
    """An open adapter whose listen() subscriptions the broker has granted."""
    adapter = make_adapter()
    adapter.listen(sink)
    assert adapter.wait_subscribed(5), "broker did not grant the listener's subscriptions"
    return adapter


