"""Fixtures for the mqtt_speaker tests: a real Mosquitto broker, one random topic prefix per
test, and fleets/adapters that are always stopped."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hub.testing_fixtures import broker, sink, token, topic_prefix, watchdog  # noqa: F401 - fixtures

from hub_mqtt_speaker.adapter import MqttSpeakerAdapter
from hub_mqtt_speaker.device import SimDevice
from hub_mqtt_speaker.simulator import Fleet

from mqtt_speaker_helpers import RecordingSink

_watchdog = watchdog(180)  # no single test may hang the run longer than this (pytest-timeout aside)
prefix = topic_prefix("hubtest/mqtt_speaker")


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
def listening(make_adapter: Callable[..., MqttSpeakerAdapter],
              sink: RecordingSink) -> MqttSpeakerAdapter:
    """An open adapter whose listen() subscriptions the broker has granted."""
    adapter = make_adapter()
    adapter.listen(sink)
    assert adapter.wait_subscribed(5), "broker did not grant the listener's subscriptions"
    return adapter


