"""Suite parameters: every time limit the checks apply.

None of these numbers comes from a Ministry text — the research note found no interval, timeout
or skew limit (shared/research/ministry-requirements.md, section 4). They are the hub's choices,
reports label them so, and each can be overridden on the command line or in the target file.
Defaults differ for a simulator (everything on loopback, answers in milliseconds) and for real
devices (3G/4G round trips, 60 s heartbeats).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MODES = ("strict", "lenient")

# Every time limit L is applied as L × tolerance. Strict is tight, lenient forgives slow links.
TOLERANCE = {"strict": 1.25, "lenient": 2.0}
# Heartbeat gaps are measured between the moments the hub stored what it heard (the ingest writer
# batches every 50 ms, the suite polls every 50 ms); this much slack absorbs that and a loaded
# machine, so a heartbeat that is on time is never counted late.
MEASUREMENT_SLACK_S = 0.3


@dataclass(frozen=True)
class Parameter:
    name: str
    unit: str
    default_device: float
    default_simulator: float
    description: str
    basis: str
    option: str  # the `hub certify` option that sets it

    def default(self, simulator: bool) -> float:
        return self.default_simulator if simulator else self.default_device


PARAMETERS: dict[str, Parameter] = {p.name: p for p in (
    Parameter("ack_timeout_s", "s", 10.0, 2.0,
              "How long a device may take to answer a command.",
              "hub's choice: a few 4G round trips; no Ministry figure found", "--ack-timeout"),
    Parameter("status_timeout_s", "s", 30.0, 2.0,
              "How long a change of state may take to show in the device's status.",
              "hub's choice; no Ministry figure found", "--status-timeout"),
    Parameter("heartbeat_interval_s", "s", 60.0, 1.0,
              "Longest allowed gap between periodic status reports (status.heartbeat).",
              "hub's choice; no interval in the texts read (research note B9); 60 s is what one "
              "vendor's LED client uses", "--heartbeat-interval"),
    Parameter("heartbeat_timeout_s", "s", 180.0, 3.0,
              "Silence after which the hub's health sweeper takes a heartbeating device offline.",
              "hub's choice: three heartbeat intervals, as the hub's own default (hub/config.py)",
              "--heartbeat-timeout"),
    Parameter("offline_timeout_s", "s", 200.0, 4.0,
              "How long after a link loss the hub must show the device offline.",
              "hub's choice: the heartbeat timeout plus the sweeper's period", "--offline-timeout"),
    Parameter("recovery_timeout_s", "s", 120.0, 10.0,
              "How long after the link returns the device must be online and answering again.",
              "hub's choice: reconnect back-off of a few attempts", "--recovery-timeout"),
    Parameter("max_clock_skew_s", "s", 10.0, 5.0,
              "Largest allowed difference between a status timestamp and its arrival.",
              "hub's choice; time synchronisation is not found in the texts read (B9)", "--max-clock-skew"),
    Parameter("level_step", "level", 1.0, 1.0,
              "Resolution of the device's volume and brightness scale in the hub's 0–100 units; a level "
              "read back or observed may differ from the level set by half a step (a 1–10 scale is 11.1).",
              "hub's choice: exact unless the target says the device's scale is coarser", "--param level_step=…"),
    Parameter("led_text_max_bytes", "bytes", 4096.0, 4096.0,
              "The board's text slot in UTF-8 bytes: the Vietnamese sample (every diacritic) is shown in "
              "pieces that fit, each checked intact, so a board with a small slot is not failed for refusing "
              "to cut text.",
              "hub's choice: large enough for the whole sample unless the target says the slot is smaller",
              "--param led_text_max_bytes=…"),
    Parameter("schedule_lead_s", "s", 20.0, 3.0,
              "How far ahead the schedule check places its slot (audio.local_schedule).",
              "hub's choice", "--param schedule_lead_s=…"),
)}


class ParameterError(ValueError):
    """An unknown parameter name or a value that is not a positive number."""


@dataclass(frozen=True)
class Resolved:
    name: str
    value: float
    default: float
    origin: str  # default | plugin manifest | target file | command line

    def to_dict(self, tolerance: float) -> dict[str, Any]:
        p = PARAMETERS[self.name]
        applied = self.value * tolerance if p.unit == "s" else self.value  # tolerance stretches time only
        return {"value": self.value, "default": self.default, "origin": self.origin, "unit": p.unit,
                "applied_limit": round(applied, 3), "description": p.description,
                "chosen_by": "hub", "basis": p.basis, "option": p.option}


def _number(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"parameter {name}: {value!r} is not a number") from None
    if not v > 0:
        raise ParameterError(f"parameter {name}: must be positive, got {v:g}")
    return v


def resolve(simulator: bool, from_target: Mapping[str, Any] | None = None,
            from_cli: Mapping[str, Any] | None = None,
            from_plugin: Mapping[str, Any] | None = None) -> dict[str, Resolved]:
    """Each parameter's value and where it came from: CLI over target file over what the plugin
    declares in its manifest (traits, e.g. level_step from its volume scale) over default."""
    for source in (from_target or {}), (from_cli or {}), (from_plugin or {}):
        unknown = sorted(set(source) - PARAMETERS.keys())
        if unknown:
            raise ParameterError(f"unknown parameters: {', '.join(unknown)} (known: {', '.join(PARAMETERS)})")
    out: dict[str, Resolved] = {}
    for name, p in PARAMETERS.items():
        default = p.default(simulator)
        value, origin = default, "default"
        if from_plugin and from_plugin.get(name) is not None:
            value, origin = _number(name, from_plugin[name]), "plugin manifest"
        if from_target and name in from_target:
            value, origin = _number(name, from_target[name]), "target file"
        if from_cli and from_cli.get(name) is not None:
            value, origin = _number(name, from_cli[name]), "command line"
        out[name] = Resolved(name, value, default, origin)
    return out


def parse_assignments(items: list[str] | tuple[str, ...]) -> dict[str, float]:
    """NAME=VALUE strings (the --param option) as a mapping."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ParameterError(f"--param {item!r}: expected NAME=VALUE")
        name = name.strip()
        if name not in PARAMETERS:
            raise ParameterError(f"--param {name}: unknown parameter (known: {', '.join(PARAMETERS)})")
        out[name] = _number(name, value)
    return out
