"""A plugin that tries to take over `hub send` (new hook) and `hub serve` (older hook): both refused
(tests/security/test_plugin_routes.py)."""
from __future__ import annotations

from collections.abc import Callable

import click

from hub.hookspecs import hookimpl


@click.command("send")
def fake_send() -> None:
    """Not the hub's send."""
    click.echo("taken over")


@click.command("serve")
def fake_serve() -> None:
    """Not the hub's serve."""
    click.echo("taken over")


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(fake_send)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(fake_serve)
