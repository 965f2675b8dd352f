"""`hub sources`: the configured content sources, their health, a try-out before saving a change,
a poll on demand, and `run`, the process that polls them."""
from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from typing import Any

import click

from hub.cli.common import Failure, checked_runtime
from hub.hookspecs import hookimpl


@click.group("sources")
def sources() -> None:
    """Content sources (RSS, CAP alerts, the national system, another hub) from the sources file."""


def _line(row: dict[str, Any], file_broken: bool) -> str:
    h = row["health"]
    unlisted = "as last configured" if file_broken else "not configured"  # the poller runs the last good file
    state = ("disabled" if row.get("enabled") is False else unlisted if not row["configured"] else
             "never polled" if h["last_attempt_at"] is None else
             f"failing ({h['failures']} in a row)" if h["failures"] else "ok")
    return (f"{row['name']:<24} {row['plugin'] or '?':<14} {state:<22} last success {h['last_success_at'] or '-'}"
            f"  items {h['items_fetched']} (last {h['items_last']})"
            + (f"  last error: {h['last_error']}" if h["last_error"] else "")
            + (f"  passed over: {len(h['notes'])} ({h['notes'][0]}{'; …' if len(h['notes']) > 1 else ''})"
               if h.get("notes") else ""))


@sources.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_sources(as_json: bool) -> None:
    """Each source with its health: last success, last error, items fetched."""
    from hub.content.sources import describe

    found = describe(checked_runtime(audit_key=False))
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    if found["error"]:
        click.echo(f"sources file error: {found['error']}")
    if not found["sources"]:
        click.echo("no sources" + ("" if found["file"] else " (sources_file is not set)"))
    for row in found["sources"]:
        click.echo(_line(row, bool(found["error"])))


@sources.command("show")
@click.argument("name")
def show(name: str) -> None:
    """One source's configuration (secrets hidden) and health, as JSON."""
    from hub.content.sources import describe_one

    row = describe_one(checked_runtime(audit_key=False), name)
    if row is None:
        raise Failure(f"no source named {name!r} (see `hub sources list`)")
    click.echo(json.dumps(row, ensure_ascii=False, indent=2))


@sources.command("test")
@click.argument("name")
@click.option("--file", "path", type=click.Path(dir_okay=False),
              help="A sources file not yet in use (default: the setting sources_file).")
def test(name: str, path: str | None) -> None:
    """Try a source's configuration now (reach it, read it) and say what is wrong."""
    from hub.content.source_config import SourceConfigError
    from hub.content.sources import one, try_source

    rt = checked_runtime(audit_key=False)
    try:
        cfg = one(rt, name, path)
    except SourceConfigError as exc:
        raise Failure(str(exc)) from None
    check = try_source(rt, cfg)
    if not check.ok:
        raise Failure(f"source {name}: {check.detail}")
    click.echo(f"ok: source {name}" + (f": {check.detail}" if check.detail else ""))
    for item in check.sample:
        click.echo(f"  {item.external_id}: {item.title}")


@sources.command("poll")
@click.argument("name")
def poll(name: str) -> None:
    """Poll one source now, in this process, and take its items in."""
    from hub.content.polling import poll as poll_now
    from hub.content.source_config import SourceConfigError
    from hub.content.sources import one

    rt = checked_runtime()
    try:
        cfg = one(rt, name)
    except SourceConfigError as exc:
        raise Failure(str(exc)) from None
    outcome = poll_now(rt, cfg)
    if not outcome.ok:
        raise Failure(f"source {name}: {outcome.error}")
    summary = outcome.intake.summary() if outcome.intake else {}
    click.echo(f"source {name}: {outcome.items} items; " + ", ".join(f"{k} {v}" for k, v in summary.items()
                                                                     if k != "errors"))
    for error in summary.get("errors", []):
        click.echo(f"  error: {error}")


@sources.command("run")
@click.option("--no-worker", is_flag=True, help="Only enqueue polls; `hub sources worker` runs them.")
def run(no_worker: bool) -> None:
    """Poll the configured sources: re-read the file when it changes, enqueue due polls, run them."""
    from hub.cli.processes import note_config
    from hub.content.polling import Poller, make_source_worker

    rt = checked_runtime()
    note_config(rt, "sources")
    stop = threading.Event()
    poller = Poller(rt)
    click.echo(f"polling sources from {rt.settings.sources_file or '(no sources_file)'} every "
               f"{rt.settings.source_tick_s:g} s; Ctrl-C to stop")
    if no_worker:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        poller.run(stop)
        return
    ticker = threading.Thread(target=poller.run, args=(stop,), name="hub-sources-tick", daemon=True)
    ticker.start()
    try:
        make_source_worker(rt).work(logging_level="INFO")  # warm shutdown on SIGTERM/SIGINT, as `hub worker`
    finally:
        stop.set()
        ticker.join(10)


@sources.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst: bool) -> None:
    """Run polls enqueued by `hub sources run --no-worker` (several may run)."""
    from hub.content.polling import make_source_worker

    rt = checked_runtime()
    make_source_worker(rt).work(burst=burst, logging_level="INFO")


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(sources)
