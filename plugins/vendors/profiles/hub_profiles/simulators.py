"""Simulator factories for `register_simulators` (hub/simulation.py):
factory(config, devices, faults=None[, status_interval]) → an object with start() and stop().

Only MQTT devices report on their own, so only their factory takes `status_interval` (the
certification's heartbeat interval); Modbus devices are polled at the adapter's interval."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hub.simulation import check_faults
from hub.vendor import DeviceRef

from hub_profiles import modbus_sim, mqtt_sim
from hub_profiles.model import Profile


def simulator_factory(profile: Profile) -> Any:
    """Devices of `profile` behind the broker (MQTT) or at their loopback addresses (Modbus) that
    an adapter `config` names. Fault modes a driver cannot imitate raise UnsupportedFault."""
    if profile.driver == "mqtt":
        def make_mqtt(config: Mapping[str, Any], devices: Iterable[DeviceRef],
                      faults: Mapping[str, set[str]] | None = None,
                      status_interval: float | None = None) -> mqtt_sim.ProfileMqttFleet:
            check_faults(faults, mqtt_sim.FAULTS)
            return mqtt_sim.ProfileMqttFleet(profile, config.get("host", "127.0.0.1"), int(config.get("port", 1883)),
                                             config.get("topic_prefix"), [d.address for d in devices],
                                             status_interval=status_interval,
                                             faults={a: set(m) for a, m in (faults or {}).items()},
                                             username=config.get("username"), password=config.get("password"))
        return make_mqtt

    def make_modbus(config: Mapping[str, Any], devices: Iterable[DeviceRef],
                    faults: Mapping[str, set[str]] | None = None) -> modbus_sim.ProfileModbusFleet:
        check_faults(faults, modbus_sim.FAULTS)
        return modbus_sim.ProfileModbusFleet(profile, [d.address for d in devices],
                                             faults={a: set(m) for a, m in (faults or {}).items()})
    return make_modbus
