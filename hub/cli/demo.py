"""`hub demo`: a simulated province fleet, an emergency bulletin, and the API to look at it."""
from __future__ import annotations

import logging
from collections.abc import Callable

import click

from hub.cli.common import Failure
from hub.hookspecs import hookimpl
from hub.store.models import DeliveryState


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True)
@click.option("--embedded", is_flag=True, help="Use fakeredis and an in-process broker even if real ones answer.")
@click.option("--no-serve", is_flag=True, help="Exit after the bulletin instead of serving the API.")
@click.option("--speakers", default=508, show_default=True)
@click.option("--boards", default=3, show_default=True)
def demo(host: str, port: int, embedded: bool, no_serve: bool, speakers: int, boards: int) -> None:
    """Simulate the Long An fleet in province 80, send an emergency bulletin, serve the API."""
    from hub.devkit import demo as demo_mod

    logging.getLogger().setLevel(logging.WARNING)
    try:
        result = demo_mod.run(host=host, port=port, embedded=embedded, serve=not no_serve, speakers=speakers,
                              boards=boards, echo=click.echo)
    except demo_mod.DemoError as exc:
        raise Failure(str(exc)) from None
    if result[DeliveryState.QUEUED] or result[DeliveryState.SENT]:
        raise Failure("some deliveries did not finish")


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(demo)
