"""Independent observation of devices, and control of their links.

A device's own reports cannot prove it does what it reports (a device that acks without acting
reports nothing wrong). A *witness* tells what the device really does:

  * a simulator offers one when it has `observe(address) -> mapping` in the hub's terms (the
    keys below, volume and brightness on the hub's 0–100 scale); a plugin can also build one
    with the `conformance_witness` hook (hub_conformance/hookspecs.py). The reference plugin's
    Fleet predates this protocol; its `device(address)` state is in the hub's terms, so it is
    adapted by name below. Other simulators' state objects are never guessed at: their units
    may be the vendor's (a 1–10 volume), and a wrong witness is worse than none;
  * for real devices, a test rig (a microphone level meter, a camera with OCR, a relay board)
    can be plugged in with `witness: module:callable` in the target file; the callable gets
    (config, devices) and returns an object with `observe(address)`.

Observed keys (absent or None when the witness cannot tell): activity (idle | playing |
relaying | showing | off), source (content id or URL), volume (0–100), brightness (0–100),
power (bool), led_text (str).

*Link control* cuts and restores a device's link, for the offline and recovery checks: a
simulator's `cut_link/restore_link` or `kill/revive`, or `link_control: module:callable`.
Without one, those checks are reported as not verified, never as passed.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol

OBSERVED_KEYS = ("activity", "source", "volume", "brightness", "power", "led_text")


class Witness(Protocol):
    label: str

    def observe(self, address: str) -> dict[str, Any]: ...


class LinkControl(Protocol):
    label: str

    def cut(self, address: str) -> None: ...

    def restore(self, address: str) -> None: ...


class ObserveWitness:
    def __init__(self, obj: Any, label: str) -> None:
        self.obj, self.label = obj, label

    def observe(self, address: str) -> dict[str, Any]:
        got = self.obj.observe(address)
        return {k: got.get(k) for k in OBSERVED_KEYS} if isinstance(got, Mapping) else {}


class _StateWitness:
    """A simulator whose `device(address)` hands out the live state object."""

    def __init__(self, obj: Any, label: str) -> None:
        self.obj, self.label = obj, label

    def observe(self, address: str) -> dict[str, Any]:
        state = self.obj.device(address)
        return {k: getattr(state, k, None) for k in OBSERVED_KEYS}


class _Link:
    def __init__(self, cut: Any, restore: Any, label: str) -> None:
        self._cut, self._restore, self.label = cut, restore, label

    def cut(self, address: str) -> None:
        self._cut(address)

    def restore(self, address: str) -> None:
        self._restore(address)


# Simulators whose device(address) state is known to be in the hub's terms (class paths).
STATE_WITNESSES = frozenset({"hub_mqtt_speaker.simulator.Fleet"})


def _class_path(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def witness_of(sim: Any, label: str = "simulator") -> Witness | None:
    if sim is None:
        return None
    if callable(getattr(sim, "observe", None)):
        return ObserveWitness(sim, label)
    if _class_path(sim) in STATE_WITNESSES and callable(getattr(sim, "device", None)):
        return _StateWitness(sim, label)
    return None


def link_control_of(sim: Any, label: str = "simulator") -> LinkControl | None:
    if sim is None:
        return None
    for cut, restore in (("cut_link", "restore_link"), ("kill", "revive")):
        if callable(getattr(sim, cut, None)) and callable(getattr(sim, restore, None)):
            return _Link(getattr(sim, cut), getattr(sim, restore), label)
    return None


def load_callable(spec: str) -> Any:
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"{spec!r}: expected module:callable")
    return getattr(importlib.import_module(module), attr)


def from_spec(spec: str, config: Mapping[str, Any], devices: list[Any], kind: str) -> Any:
    """A witness or link control built by the target file's `module:callable`."""
    obj = load_callable(spec)(dict(config), list(devices))
    if kind == "witness":
        if not callable(getattr(obj, "observe", None)):
            raise ValueError(f"witness {spec}: the object has no observe(address)")
        return ObserveWitness(obj, spec)
    link = link_control_of(obj, label=spec)
    if link is None:
        raise ValueError(f"link_control {spec}: the object has neither cut_link/restore_link nor kill/revive")
    return link
