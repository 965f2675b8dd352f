"""Outputs: what the outputs file configures (metrics, event streams, open data…) and each output's
health as `hub outputs run` last recorded it. The file itself is edited on the hub's host."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub.access.permissions import ADMINISTRATORS
from hub.api.common import HubBlueprint, not_found, runtime
from hub.hookspecs import hookimpl

blp = HubBlueprint("outputs", __name__, url_prefix="/api/outputs",
                   description="Outputs (metrics for Prometheus, event streams to an operations centre, open "
                               "data…) configured in the outputs file, with each one's health: running, last "
                               "error, events handled, retried, failed and dropped. Administrators only.")

# Who may call each view (hook register_blueprints; hub.access.permissions refuses the rest). The
# configuration names where the hub's figures go: administrators only, secrets never shown.
RULES = {"list_outputs": {"GET": ADMINISTRATORS}, "show_output": {"GET": ADMINISTRATORS}}


@blp.route("")
def list_outputs() -> dict[str, Any]:
    """List outputs

    Every configured output (its entry as written, secrets hidden) beside the status the outputs
    runner recorded: `runner` is null when no runner ever ran, `runner.alive` false when it stopped
    recording; `error` says what is wrong with the outputs file (the runner then keeps running its
    last good configuration, listed with `configured: false`).
    """
    from hub.reports.outputs import describe

    return describe(runtime())


@blp.route("/<string:name>")
@blp.fails(404)
def show_output(name: str) -> dict[str, Any]:
    """Show an output"""
    from hub.reports.outputs import describe

    found = describe(runtime())
    for row in found["outputs"]:
        if row["name"] == name:
            return {**row, "runner": found["runner"], "file_error": found["error"]}
    not_found("output", name)


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
