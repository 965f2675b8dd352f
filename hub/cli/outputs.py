"""`hub outputs`: the configured outputs and their health, and `run`, the process that feeds them."""
from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from typing import Any

import click

from hub.cli.common import Failure, checked_runtime, runtime
from hub.hookspecs import hookimpl


@click.group("outputs")
def outputs() -> None:
    """Outputs (metrics, event streams, open data…) from the outputs file."""


def _line(row: dict[str, Any]) -> str:
    st = row["status"]
    if not row["enabled"]:
        state = "disabled"
    elif st is None:
        state = "not running"
    elif st.get("ok"):
        state = "ok"
    else:
        state = f"failing: {st.get('detail') or st.get('last_error') or '?'}"
    where = "" if row["configured"] else " (from the last good file)"
    counts = ("" if st is None else
              f"  handled {st.get('handled', 0)} retried {st.get('retried', 0)} given up {st.get('given_up', 0)} "
              f"dropped {st.get('dropped', 0)} waiting {st.get('waiting', 0)}")
    return f"{row['name']:<20} {row['plugin'] or '?':<14} {state}{where}{counts}"


@outputs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_outputs(as_json: bool) -> None:
    """Each output with its health, as the running `hub outputs run` last recorded it."""
    from hub.reports.outputs import describe

    found = describe(checked_runtime(audit_key=False))
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    if found["error"]:
        click.echo(f"outputs file error: {found['error']}")
    runner = found["runner"]
    if runner is None:
        click.echo("no outputs runner has run (`hub outputs run`)")
    elif not runner.get("alive"):
        click.echo(f"the outputs runner is not running (last seen {runner.get('seen_s_ago', '?')} s ago)")
    if not found["outputs"]:
        click.echo("no outputs" + ("" if found["file"] else " (outputs_file is not set)"))
    for row in found["outputs"]:
        click.echo(_line(row))


@outputs.command("run")
def run() -> None:
    """Feed the configured outputs: the hub's events, periodic runs; re-read the file when it changes."""
    from hub.cli.processes import note_config
    from hub.reports.outputs import OutputRunner

    if not runtime().settings.outputs_file:
        raise Failure("outputs_file is not set: nothing to run (see docs/configuration.md)")
    rt = checked_runtime()
    note_config(rt, "outputs")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"running outputs from {rt.settings.outputs_file}; Ctrl-C to stop")
    OutputRunner(rt).run(stop)


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(outputs)
