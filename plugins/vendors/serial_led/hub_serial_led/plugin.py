"""Entry point `hub.vendors: serial_led`: registers the adapter and its bus simulator with the hub."""
from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hub.hookspecs import hookimpl
from hub.simulation import check_faults
from hub.vendor import DeviceRef

from hub_serial_led.adapter import SerialLedAdapter
from hub_serial_led.simulator import SimGroup, simulate_devices

# The hub's fault modes (hub/simulation.py) → this simulator's switches. Not here: the modes
# about audio (ignores_emergency, misreports_volume) and credentials (accepts_unauthenticated),
# which a board on a bus has nothing to do with, and no_heartbeat: on a polled bus the hub's
# poll is the heartbeat, and a board that does not answer it is simply offline.
FAULT_SWITCHES: dict[str, dict[str, Any]] = {
    "silent": {"silent": True},
    "rejects_all": {"nak_all": True},
    "mangles_diacritics": {"mangle_text": True},
    "acks_without_acting": {"ack_without_acting": True},
}


@hookimpl
def register_vendors(register: Callable[[type], None]) -> None:
    register(SerialLedAdapter)


def make_simulator(config: Mapping[str, Any], devices: Iterable[DeviceRef],
                   faults: Mapping[str, set[str]] | None = None) -> SimGroup:
    """The hub's simulator factory: serve `devices` where their addresses point, with the
    hub's fault modes switched on per device address."""
    check_faults(faults, FAULT_SWITCHES)
    switches: dict[str, dict[str, Any]] = {}
    for address, modes in (faults or {}).items():
        for mode in modes:
            switches.setdefault(address, {}).update(FAULT_SWITCHES[mode])
    return simulate_devices(config, devices, switches)


@hookimpl
def register_simulators(register: Callable[[str, Any], None]) -> None:
    register(SerialLedAdapter.manifest.name, make_simulator)


@hookimpl
def conformance_setup(vendor: str, run_id: str) -> dict[str, Any] | None:
    """For `hub certify serial_led --simulator`: addresses must name a bus, so two boards on a
    free loopback port, polled often enough for the suite's simulator heartbeat interval."""
    if vendor != SerialLedAdapter.manifest.name:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return {"config": {"poll_interval_s": 0.5, "timeout_s": 0.5, "offline_after": 2},
            "devices": [{"address": f"socket://127.0.0.1:{port}#{n}", "kind": "led_board"} for n in (1, 2)]}
