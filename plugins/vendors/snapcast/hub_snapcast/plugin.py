"""Entry point `hub.vendors: snapcast`: registers the adapter and the real-process simulator."""
from __future__ import annotations

import socket

from collections.abc import Callable, Iterable
from typing import Any

from hub.hookspecs import hookimpl
from hub.simulation import check_faults
from hub.vendor import DeviceRef

from hub_snapcast.adapter import SnapcastAdapter
from hub_snapcast.simulator import SnapcastFleet


@hookimpl
def register_vendors(register: Callable[[type], None]) -> None:
    register(SnapcastAdapter)


def make_fleet(config: dict[str, Any], devices: Iterable[DeviceRef],
               faults: dict[str, set[str]] | None = None) -> SnapcastFleet:
    """A real snapserver on the port `config` names, and one snapclient per device. Real
    software has no fault switches: any fault mode asked for is refused by name."""
    check_faults(faults, ())
    return SnapcastFleet(config, [d.address for d in devices])


@hookimpl
def register_simulators(register: Callable[[str, Any], None]) -> None:
    register(SnapcastAdapter.manifest.name, make_fleet)


# The suite's simulator media (hub_conformance.target.Media.for_simulator): its relay checks
# relay this URL, which snapcast only carries when relay_streams maps it to a stream.
CONFORMANCE_RELAY_URL = "http://127.0.0.1:9/hub-conformance/live"


@hookimpl
def conformance_setup(vendor: str, run_id: str, parameters: dict[str, float]) -> dict[str, Any] | None:
    """For `hub certify snapcast --simulator`: snapserver on a free loopback port, polled at
    half the suite's heartbeat interval, with the suite's relay URL mapped to a stream."""
    if vendor != SnapcastAdapter.manifest.name:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    poll = max(0.2, float(parameters.get("heartbeat_interval_s", 1.0)) / 2)
    return {"config": {"control_port": port, "poll_interval_s": poll,
                       "relay_streams": {CONFORMANCE_RELAY_URL: "conformance-live"}}}
