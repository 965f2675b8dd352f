"""`hub demo`: a simulated province fleet, the story of a storm warning pre-empting the morning
programme, and the console to watch it in."""
from __future__ import annotations

import logging
from collections.abc import Callable

import click

from hub.cli.common import Failure
from hub.hookspecs import hookimpl


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, help="The console's and API's port.")
@click.option("--embedded", is_flag=True, help="Use fakeredis and an in-process broker even if real ones answer.")
@click.option("--once", is_flag=True, help="Exit after the story instead of serving the console until Ctrl-C.")
@click.option("--speakers", default=508, show_default=True)
@click.option("--boards", default=3, show_default=True)
def demo(host: str, port: int, embedded: bool, once: bool, speakers: int, boards: int) -> None:
    """Simulate the Long An fleet in province 80: a morning programme, a CAP storm warning that
    pre-empts it where it strikes, the programme resuming; serve the console until Ctrl-C."""
    from hub.devkit import demo as demo_mod

    logging.getLogger().setLevel(logging.WARNING)
    try:
        told = demo_mod.run(host=host, port=port, embedded=embedded, once=once, speakers=speakers,
                            boards=boards, echo=click.echo)
    except demo_mod.DemoError as exc:
        raise Failure(str(exc)) from None
    if once and (not told.preempted or told.preempted != told.targeted or told.resumed != told.preempted):
        raise Failure("the story did not end as told: see the steps above")


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(demo)
