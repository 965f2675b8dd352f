"""`hub schemas export`: the exchange formats as JSON Schema files, and their drift check."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from hub.cli.common import Failure
from hub.hookspecs import hookimpl


@click.group()
def schemas() -> None:
    """JSON Schemas of the exchange formats."""


@schemas.command("export")
@click.option("--dir", "directory", default="schemas", type=click.Path(file_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Fail if the files differ from the code instead of writing.")
def schemas_export(directory: Path, check: bool) -> None:
    """Write the schemas as JSON Schema files (or check they are current)."""
    from hub.schemas.export import drift, write_all

    if check:
        stale = drift(directory)
        if stale:
            raise Failure(f"schemas out of date in {directory}: {', '.join(stale)} (run `hub schemas export`)")
        click.echo("schemas are current")
        return
    for path in write_all(directory):
        click.echo(f"wrote {path}")


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(schemas)
