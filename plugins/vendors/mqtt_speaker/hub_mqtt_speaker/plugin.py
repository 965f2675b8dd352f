"""Entry point `hub.vendors: mqtt_speaker`: registers the adapter and its simulator with the hub."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hub.hookspecs import hookimpl
from hub.simulation import check_faults
from hub.vendor import DeviceRef

from hub_mqtt_speaker.adapter import MqttSpeakerAdapter
from hub_mqtt_speaker.device import SimDevice
from hub_mqtt_speaker.simulator import Fleet

# The hub's fault modes (hub/simulation.py) → this simulator's switches.
FAULT_SWITCHES: dict[str, dict[str, Any]] = {
    "ignores_emergency": {"ignore_priority": True},
    "misreports_volume": {"wrong_volume": True},
    "no_heartbeat": {"no_heartbeat": True},
    "mangles_diacritics": {"mangle_text": True},
    "acks_without_acting": {"ack_without_acting": True},
    "silent": {"silent": True},
    "rejects_all": {"reject_all": True},
}


@hookimpl
def register_vendors(register: Callable[[type], None]) -> None:
    register(MqttSpeakerAdapter)


def make_fleet(config: Mapping[str, Any], devices: Iterable[DeviceRef],
               faults: Mapping[str, set[str]] | None = None, status_interval: float = 5.0) -> Fleet:
    """Simulate `devices` behind the broker and prefix an adapter `config` names."""
    check_faults(faults, FAULT_SWITCHES)
    sims = []
    for d in devices:
        switches: dict[str, Any] = {}
        for mode in (faults or {}).get(d.address, ()):
            switches.update(FAULT_SWITCHES[mode])
        sims.append(SimDevice(d.address, kind=d.kind, **switches))
    return Fleet(host=config.get("host", "127.0.0.1"), port=int(config.get("port", 1883)),
                 prefix=config.get("topic_prefix", "hub/mqtt_speaker"), devices=sims,
                 status_interval=status_interval, username=config.get("username"),
                 password=config.get("password"))


@hookimpl
def register_simulators(register: Callable[[str, Any], None]) -> None:
    register(MqttSpeakerAdapter.manifest.name, make_fleet)
