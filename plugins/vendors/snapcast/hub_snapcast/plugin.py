"""Entry point `hub.vendors: snapcast`: registers the adapter and the real-process simulator."""
from __future__ import annotations

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
