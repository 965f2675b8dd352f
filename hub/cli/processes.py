"""`hub serve`, `hub worker`, `hub scheduler` and `hub sweep`: the hub's long-running processes
(and the one-off sweep), each noting changed settings in the audit log when it starts."""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

import click

from hub.cli.common import Failure, checked_runtime
from hub.hookspecs import hookimpl


def note_config(rt: Any, process: str) -> None:
    """A process that starts with changed settings says so in the audit log."""
    from hub.access.audit import record_config

    with rt.db.session() as s:
        record_config(s, rt.settings, process)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True)
def serve(host: str, port: int) -> None:
    """Run the REST API (development server; use gunicorn hub.wsgi:app in production)."""
    from hub.api import create_app

    rt = checked_runtime()
    note_config(rt, "serve")
    create_app(rt).run(host=host, port=port, threaded=True)


@click.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--name", help="Worker name (default: generated).")
def worker(burst: bool, name: str | None) -> None:
    """Run a job worker (send batches to devices). Run several for throughput."""
    from hub.delivery.worker import make_worker

    rt = checked_runtime()
    note_config(rt, "worker")
    w = make_worker(rt, name=name)
    w.work(burst=burst, logging_level="INFO")


@click.command()
@click.option("--name", help="Instance name in logs and in the leader lock (default: host-pid-random).")
def scheduler(name: str | None) -> None:
    """Release scheduled commands to the workers on time, and make programmes' coming occurrences into
    scheduled commands. Run one or two (one releases, on a Redis lock; both may make a slot: once)."""
    from hub.broadcast.programme_loop import ProgrammeLoop
    from hub.delivery.release import Scheduler

    rt = checked_runtime()
    note_config(rt, "scheduler")
    sched = Scheduler(rt, name=name)
    programmes = ProgrammeLoop(rt)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sched.start()
    programmes.start()
    click.echo(f"scheduler {sched.name} running (lead {rt.settings.scheduler_lead_s:g} s; programmes every "
               f"{rt.settings.programme_materialise_interval_s:g} s, {rt.settings.programme_look_ahead_s:g} s "
               "ahead); Ctrl-C to stop")
    while not stop.wait(1.0):
        if not sched.alive() or not programmes.alive():
            programmes.stop()
            sched.stop()
            raise Failure("scheduler loop ended unexpectedly")
    programmes.stop()
    sched.stop()
    click.echo(f"scheduler stopped: {sched.stats}")


@click.command()
def sweep() -> None:
    """End every overdue delivery `expired` once (ingest does this continuously)."""
    from hub.delivery.states import expire_due

    rt = checked_runtime()
    with rt.db.session() as s:
        n = len(expire_due(s))
    click.echo(f"expired {n} deliveries")


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(serve)
    register(worker)
    register(scheduler)
    register(sweep)
