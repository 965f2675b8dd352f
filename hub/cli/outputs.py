"""`hub outputs`: the configured outputs and their health, and `run`, the process that feeds them."""
from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from typing import Any

import click

from hub.cli.common import Failure, checked_runtime, cli_actor, runtime
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


@outputs.command("dead-letters")
@click.argument("name")
@click.option("--replay", is_flag=True, help="Have the running `hub outputs run` send them all again.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def dead_letters_cmd(name: str, replay: bool, as_json: bool) -> None:
    """An output's dead letters (events it could not deliver); --replay sends them again."""
    from hub.access import audit
    from hub.reports.output_dead_letters import KeepsNoDeadLetters, NoSuchOutput, dead_letters, request_replay

    rt = checked_runtime()
    try:
        rows = dead_letters(rt, name)
        done = request_replay(rt, name, None) if replay else None
    except (NoSuchOutput, KeepsNoDeadLetters) as exc:
        raise Failure(str(exc)) from None
    if done is not None:
        with rt.db.session() as s:
            audit.record(s, cli_actor(), "output.dead_letters.replay", "output", name,
                         {"ids": "all", "replay_requested": done["replay_requested"], "not_found": []})
    if as_json:
        click.echo(json.dumps({"output": name, "dead_letters": rows, "replay": done}, ensure_ascii=False, indent=2))
        return
    for r in rows:
        env = r.get("envelope") or {}
        click.echo(f"{r.get('dead_id')}  {r.get('dead_at')}  {r.get('destination')}  {env.get('type')} "
                   f"#{env.get('sequence')}  {r.get('attempts')} attempts: {r.get('reason')}"
                   + ("  (replay requested)" if r.get("replay_requested") else ""))
    click.echo(f"{len(rows)} dead letters")
    if done is not None:
        click.echo(f"{done['replay_requested']} marked for replay by the running `hub outputs run`")


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
