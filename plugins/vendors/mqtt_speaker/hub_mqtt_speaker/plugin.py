"""Entry point `hub.vendors: mqtt_speaker`: registers the adapter and its simulator with the hub."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from hub.hookspecs import hookimpl
from hub.vendor import DeviceRef

from hub_mqtt_speaker.adapter import MqttSpeakerAdapter
from hub_mqtt_speaker.device import SimDevice
from hub_mqtt_speaker.simulator import Fleet


@hookimpl
def register_vendors(register: Callable[[type], None]) -> None:
    register(MqttSpeakerAdapter)


def make_fleet(config: dict[str, Any], devices: Iterable[DeviceRef], status_interval: float = 5.0) -> Fleet:
    """Simulate `devices` behind the broker and prefix an adapter `config` names."""
    return Fleet(host=config.get("host", "127.0.0.1"), port=int(config.get("port", 1883)),
                 prefix=config.get("topic_prefix", "hub/mqtt_speaker"),
                 devices=[SimDevice(d.address, kind=d.kind) for d in devices], status_interval=status_interval,
                 username=config.get("username"), password=config.get("password"))


@hookimpl
def register_simulators(register: Callable[[str, Any], None]) -> None:
    register(MqttSpeakerAdapter.manifest.name, make_fleet)
