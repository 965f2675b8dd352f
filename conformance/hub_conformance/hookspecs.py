"""An optional hook a vendor plugin may implement for certification.

It lives here, not in hub/hookspecs.py, because only the conformance suite calls it; plugins
implement it with the hub's own marker, `from hub.hookspecs import hookimpl`, so a plugin that
implements it needs nothing from hub-conformance at run time. The suite adds this spec to the
plugin manager before calling it (pluggy accepts implementations registered before their spec).
"""
from __future__ import annotations

from typing import Any

from pluggy import HookspecMarker

hookspec = HookspecMarker("hub")


@hookspec(firstresult=True)
def conformance_setup(vendor: str, run_id: str, parameters: dict[str, float]) -> dict[str, Any] | None:  # type: ignore[empty-body]
    """How to run `vendor`'s simulator for one certification run, or None if not yours.

    `parameters` are the suite's parameters for this run (heartbeat_interval_s, ack_timeout_s…):
    a polled plugin sets its poll interval from heartbeat_interval_s. An implementation may
    leave out arguments it does not use (pluggy passes only those it names).

    Return a mapping with any of:
      config   the adapter configuration the simulator and the hub share (a unique topic
               prefix, a free port, test credentials the simulator enforces…); `run_id` is
               unique per run, use it to keep parallel runs apart
      devices  a list of {address, kind} (and optionally id, capabilities, config) to simulate,
               in the address format your devices use
    The target file, when given, overrides both.
    """


@hookspec(firstresult=True)
def conformance_witness(vendor: str, simulator: Any) -> Any | None:
    """An object with `observe(address) -> mapping` telling what `vendor`'s simulated device
    really does, in the hub's terms (see hub_conformance/witness.py), or None if not yours.
    Simulators that have `observe` themselves need not implement this."""
