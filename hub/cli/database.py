"""`hub init-db` and `hub upgrade-db`: create the database, or bring an older one to this schema."""
from __future__ import annotations

from collections.abc import Callable

import click

from hub.cli.common import Failure, runtime
from hub.hookspecs import hookimpl


@click.command("init-db")
def init_db() -> None:
    """Create the database tables (idempotent) and stamp the schema version."""
    from hub.store.db import SchemaError

    rt = runtime()
    try:
        rt.db.create()
    except SchemaError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"database ready: {rt.db.safe_url}")


@click.command("upgrade-db")
def upgrade_db() -> None:
    """Upgrade a database made by an earlier hub to this version's schema, in place (back it up first)."""
    from hub.store.db import SchemaError

    rt = runtime()
    try:
        done = rt.db.upgrade()
    except SchemaError as exc:
        raise Failure(str(exc)) from None
    for line in done:
        click.echo(f"upgraded to {line}")
    click.echo(f"database ready: {rt.db.safe_url}" if done else f"database already current: {rt.db.safe_url}")


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(init_db)
    register(upgrade_db)
