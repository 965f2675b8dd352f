"""`hub plugins`: what is installed, and what was refused while loading it."""
from __future__ import annotations

import json
from collections.abc import Callable

import click

from hub.cli.common import Failure, runtime
from hub.hookspecs import hookimpl


@click.command()
@click.option("--json", "as_json", is_flag=True)
def plugins(as_json: bool) -> None:
    """List installed plugins with versions and capabilities."""
    from hub.plugins import PluginError, kind_lines

    rt = runtime()
    try:
        described = rt.plugins.describe()
    except PluginError as exc:
        raise Failure(str(exc)) from None
    if as_json:
        click.echo(json.dumps(described, indent=2, ensure_ascii=False))
        return
    for problem in rt.plugins.problems:
        click.echo(f"hub: warning: {problem}", err=True)
    if not described:
        click.echo("no plugins installed")
    for p in described:
        skipped = "" if p.get("loaded", True) else "  NOT LOADED"
        click.echo(f"{p['name']} {p['version']}  ({p['group']}, {p['distribution']}){skipped}")
        for v in p.get("vendors", []):
            click.echo(f"  vendor {v['name']}: {', '.join(v['device_kinds'])} over {', '.join(v['protocols'])}")
            click.echo(f"    capabilities: {', '.join(v['capabilities'])}")
        for line in kind_lines(p):
            click.echo(f"  {line}")


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(plugins)
