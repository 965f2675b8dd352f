"""Entry point `hub.vendors: profiles`: one vendor adapter per valid profile, a simulator for
each, and the `hub profiles` commands."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import click

from hub.hookspecs import hookimpl

from hub_profiles.adapters import adapter_class
from hub_profiles.check import profiles_group
from hub_profiles.loader import load_profiles
from hub_profiles.simulators import simulator_factory
from hub.ports import free_port as _free_port

log = logging.getLogger(__name__)


@hookimpl
def register_vendors(register: Callable[[type], None]) -> None:
    result = load_profiles()
    for err in result.errors:
        # A wrong profile costs its own devices, never the hub: say exactly what is wrong.
        log.error("device profile skipped: %s", err)
    for _builtin, new in result.replaced:
        log.warning("device profile %s from %s replaces the built-in one", new.name, new.source)
    for profile in result.profiles:
        try:
            register(adapter_class(profile))
        except Exception as exc:  # noqa: BLE001 - e.g. another plugin registered the name first
            log.error("device profile %s (%s) not registered: %s", profile.name, profile.source, exc)


@hookimpl
def register_simulators(register: Callable[[str, Any], None]) -> None:
    for profile in load_profiles().profiles:
        register(profile.name, simulator_factory(profile))


@hookimpl
def conformance_setup(vendor: str, run_id: str, parameters: dict[str, float]) -> dict[str, Any] | None:
    """How `hub certify` runs a profile's simulator: MQTT devices under a topic prefix of the
    run's own (parallel runs share one broker); Modbus devices on a free loopback port, polled
    twice per heartbeat interval — the poll is what reports their status — with a timeout short
    enough that a device that stops answering is seen offline within the suite's limits. MQTT
    echoes are waited for no longer than the suite's ack limit."""
    profile = next((p for p in load_profiles().profiles if p.name == vendor), None)
    if profile is None:
        return None
    kinds = profile.device_kinds
    if profile.driver == "mqtt":
        # A device that has not echoed within the suite's own ack limit has failed that check
        # already: waiting the profile's full timeout_s (5 s for Tasmota) on every attempt only
        # makes a fault run (rejects_all, silent) minutes longer.
        config: dict[str, Any] = {"topic_prefix": f"hubconf/{run_id}"}
        if parameters.get("ack_timeout_s"):
            config["echo_timeout_s"] = float(parameters["ack_timeout_s"])
        return {"config": config,
                "devices": [{"address": f"{'SPK' if k == 'speaker' else 'LED'}-{run_id}", "kind": k} for k in kinds]}
    heartbeat = float(parameters.get("heartbeat_interval_s", 1.0))
    return {"config": {"poll_interval_s": max(0.1, heartbeat / 2), "timeout_s": 0.5, "retries": 0},
            "devices": [{"address": f"127.0.0.1:{_free_port()}/{i + 1}", "kind": k} for i, k in enumerate(kinds)]}




@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(profiles_group)
