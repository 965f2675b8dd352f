"""`hub ingest`: receive what devices report, and `hub ingest quarantine`, what it could not store."""
from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable

import click

from hub.cli.common import Failure, checked_runtime
from hub.cli.processes import note_config
from hub.hookspecs import hookimpl


@click.group(invoke_without_command=True)
@click.pass_context
def ingest(ctx: click.Context) -> None:
    """Receive acks, status and presence from devices, and expire overdue deliveries.
    `hub ingest quarantine` lists the messages it could not store."""
    if ctx.invoked_subcommand is not None:
        return
    from hub.delivery.ingest import Ingest
    from hub.vendor import TransientError

    rt = checked_runtime()
    note_config(rt, "ingest")
    ing = Ingest(rt)
    try:
        ing.start()
    except TransientError as exc:
        raise Failure(str(exc)) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo("ingest running; Ctrl-C to stop")
    # with a timeout: the handler runs on the main thread, and a SIGTERM the kernel hands to
    # another thread would otherwise never wake a wait without one (systemd would SIGKILL us)
    while not stop.wait(1.0):
        pass
    ing.stop()
    click.echo(f"ingest stopped: {ing.stats}")


@ingest.command("quarantine")
@click.option("--vendor", help="Only this vendor plugin's messages.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def ingest_quarantine(vendor: str | None, limit: int, as_json: bool) -> None:
    """Device messages the ingest could not parse or store, newest first."""
    from sqlalchemy import func, select

    from hub.delivery import quarantine

    rt = checked_runtime()
    with rt.db.session() as s:
        stmt = quarantine.query(None, vendor=vendor)
        total = s.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
        rows = [quarantine.as_dict(r) for r in s.scalars(stmt.limit(limit))]
    for r in rows:
        if as_json:
            click.echo(json.dumps({**r, "at": r["at"].isoformat()}, ensure_ascii=False))
        else:
            click.echo(f"{r['at'].isoformat(timespec='seconds')}  #{r['id']} {r['vendor']} {r['address']} "
                       f"{r['kind']}: {r['reason']}\n    {r['payload']}")
    if not as_json:
        click.echo(f"{total} quarantined" + (f" ({vendor})" if vendor else "") +
                   (f", newest {len(rows)} shown" if total > len(rows) else ""))


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(ingest)
