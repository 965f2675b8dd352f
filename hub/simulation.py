"""What a vendor plugin's simulator offers the hub: the factory registered through the
`register_simulators` hook, and the closed vocabulary of fault modes the conformance suite
injects to prove it catches them.

A factory is called as `factory(config, devices, faults=None)`:
  config   the adapter's configuration (where the simulator must listen: broker, port, URL…)
  devices  hub.vendor.DeviceRef list to simulate (address, kind)
  faults   {address: set of FAULT_MODES names} — devices that misbehave on purpose
and returns an object with start() and stop(). A simulator that cannot imitate a fault mode
raises UnsupportedFault naming it, so a certification run never silently tests nothing.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from hub.vendor import DeviceRef

FAULT_MODES: dict[str, str] = {
    "ignores_emergency": "an emergency bulletin does not pre-empt what is playing",
    "misreports_volume": "the volume read back differs from the volume set",
    "accepts_unauthenticated": "commands without valid credentials are carried out",
    "no_heartbeat": "no periodic status, so silence cannot be told from a dead link",
    "mangles_diacritics": "Vietnamese text loses its diacritics on the board",
    "acks_without_acting": "commands are acknowledged but not carried out",
    "silent": "receives commands but never answers",
    "rejects_all": "refuses every command",
}


class UnsupportedFault(ValueError):
    """The simulator cannot imitate this fault mode."""


class Simulator(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class SimulatorFactory(Protocol):
    def __call__(self, config: Mapping[str, Any], devices: Iterable[DeviceRef],
                 faults: Mapping[str, set[str]] | None = None) -> Simulator: ...


def check_faults(faults: Mapping[str, Iterable[str]] | None, supported: Iterable[str],
                 extra: Iterable[str] = ()) -> None:
    """Raise UnsupportedFault for any requested mode the simulator does not support. `extra`
    names the simulator's own fault modes (declared to the conformance suite with the requirement
    IDs they break), which it supports besides those of the vocabulary."""
    extra = set(extra)
    ok = set(supported) | extra
    for address, modes in (faults or {}).items():
        for m in modes:
            if m not in FAULT_MODES and m not in extra:
                raise UnsupportedFault(f"{address}: {m} is not a fault mode (known: {', '.join(FAULT_MODES)})")
            if m not in ok:
                raise UnsupportedFault(f"{address}: this simulator cannot imitate {m}")
