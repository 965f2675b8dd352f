"""Entry point `hub.vendors: modbus_board`: registers the adapter and its simulator with the hub."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hub.hookspecs import hookimpl
from hub.simulation import check_faults
from hub.vendor import DeviceRef

from hub_modbus_board.adapter import ModbusBoardAdapter
from hub_modbus_board.addressing import Endpoint, parse_address
from hub_modbus_board.board import UnitSpec
from hub_modbus_board.simulator import BoardFleet, BoardSim

# The hub's fault modes (hub/simulation.py) → this simulator's switches. Not imitated:
# ignores_emergency (the controller has no notion of priority; the hub's queues order commands)
# and accepts_unauthenticated (Modbus TCP has no authentication to bypass).
FAULT_SWITCHES: dict[str, str] = {
    "misreports_volume": "wrong_volume",
    "no_heartbeat": "no_heartbeat",
    "mangles_diacritics": "mangle_text",
    "acks_without_acting": "ack_without_acting",
    "silent": "silent",
    "rejects_all": "exception_on_write",
}
_FALSE = ("false", "0", "no", "off")


@hookimpl
def register_vendors(register: Callable[[type], None]) -> None:
    register(ModbusBoardAdapter)


def make_simulator(config: Mapping[str, Any], devices: Iterable[DeviceRef],
                   faults: Mapping[str, set[str]] | None = None) -> BoardFleet:
    """One simulated controller per host:port the devices' addresses name, each serving those
    units; a device whose config says `unicode: false` is an ASCII-only board. `config` is not
    needed: Modbus devices are reached at their own addresses."""
    check_faults(faults, FAULT_SWITCHES)
    by_endpoint: dict[Endpoint, list[UnitSpec]] = {}
    switches: dict[Endpoint, list[tuple[int, str]]] = {}
    for d in devices:
        address = parse_address(d.address)
        unicode = str(d.config.get("unicode", True)).strip().lower() not in _FALSE
        by_endpoint.setdefault(address.endpoint, []).append(UnitSpec(address.unit, unicode=unicode, kind=d.kind))
        for mode in (faults or {}).get(d.address, ()):
            switches.setdefault(address.endpoint, []).append((address.unit, FAULT_SWITCHES[mode]))
    sims = []
    for ep, units in sorted(by_endpoint.items()):
        sim = BoardSim(units, host=ep.host, port=ep.port)
        for unit, switch in switches.get(ep, ()):
            sim.set_faults(unit, **{switch: True})
        sims.append(sim)
    return BoardFleet(sims)


@hookimpl
def register_simulators(register: Callable[[str, Any], None]) -> None:
    register(ModbusBoardAdapter.manifest.name, make_simulator)
