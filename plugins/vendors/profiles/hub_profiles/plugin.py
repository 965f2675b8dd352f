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
def register_commands(cli: click.Group) -> None:
    cli.add_command(profiles_group)
