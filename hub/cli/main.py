"""The `hub` command. Errors are one line on stderr and a non-zero exit, never a traceback."""
from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click
from marshmallow import ValidationError

from hub.capabilities import PRIORITIES
from hub.cli.admin import register as register_admin_commands
from hub.cli.contents import register as register_content_commands
from hub.cli.common import Failure, checked_runtime as _checked_runtime, cli_actor, first_error, runtime as _runtime
from hub.store.models import ACTIVE_STATES, DeliveryState

__all__ = ["Failure", "cli", "main"]


class _Hub(click.Group):
    """The `hub` group: every argument of every command is checked for text here, once."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from hub.text import find_surrogate

        # Bytes that are not UTF-8 in argv reach Python as lone surrogates (surrogateescape);
        # stored, they break every listing that holds them.
        for i, arg in enumerate(args, 1):
            if find_surrogate(arg) is not None:
                try:  # the bytes as given, e.g. Nguy\xe1n
                    shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                except UnicodeEncodeError:
                    shown = arg.encode("utf-8", "backslashreplace").decode("ascii")
                raise Failure(f"argument {i} ({shown}) is not valid UTF-8 text: check the terminal's or the "
                              f"script's encoding")
        return super().parse_args(ctx, args)


@click.group(cls=_Hub)
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
def cli(verbose: bool) -> None:
    """Integration hub for the grassroots information system (hệ thống thông tin nguồn)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@cli.command("init-db")
def init_db() -> None:
    """Create the database tables (idempotent) and stamp the schema version."""
    from hub.store.db import SchemaError

    rt = _runtime()
    try:
        rt.db.create()
    except SchemaError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"database ready: {rt.db.safe_url}")


@cli.command("upgrade-db")
def upgrade_db() -> None:
    """Upgrade a database made by an earlier hub to this version's schema, in place (back it up first)."""
    from hub.store.db import SchemaError

    rt = _runtime()
    try:
        done = rt.db.upgrade()
    except SchemaError as exc:
        raise Failure(str(exc)) from None
    for line in done:
        click.echo(f"upgraded to {line}")
    click.echo(f"database ready: {rt.db.safe_url}" if done else f"database already current: {rt.db.safe_url}")


@cli.group("import")
def import_() -> None:
    """Import areas and devices."""


@import_.command("areas")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--official", is_flag=True, help="Load the official list from the vietnam-provinces package.")
@click.option("--province", "provinces", multiple=True, help="With --official: only this province code.")
@click.option("--move-existing", is_flag=True, help="With --official: also move areas already stored under "
              "another parent (their subtrees, devices and the accounts holding them go along). Without it, "
              "the import lists them and stops.")
def import_areas_cmd(file: Path | None, official: bool, provinces: tuple[str, ...], move_existing: bool) -> None:
    """Import areas from FILE (CSV/YAML: code,name,type,parent_code) or the official list."""
    from hub.access import audit
    from hub.fleet.areas import AreaError, import_areas, official_rows, planned_moves
    from hub.fleet.registry import RegistryError, import_area_file

    if bool(file) == official:
        raise Failure("give either a FILE or --official")
    if move_existing and not official:
        raise Failure("--move-existing goes with --official")
    rt = _checked_runtime()
    moves = []
    try:
        with rt.db.session() as s:
            if official:
                rows = official_rows(provinces or None)
                moves = planned_moves(s, rows)
                if moves and not move_existing:
                    for m in moves:
                        click.echo(f"would move {m}")
                    raise Failure(f"{len(moves)} areas already stored lie under another parent in the official "
                                  f"list (listed above; nothing imported): check them, then rerun with "
                                  f"--move-existing to move them")
                n = import_areas(s, rows)
            else:
                n = import_area_file(s, file)
            audit.record(s, cli_actor(), "areas.import", "area", None,
                         {"rows": n, "source": "official" if official else str(file), "provinces": list(provinces),
                          **({"moved": [m.code for m in moves]} if moves else {})})
    except (AreaError, RegistryError) as exc:
        raise Failure(str(exc)) from None
    for m in moves:
        click.echo(f"moved {m}")
    click.echo(f"imported {n} areas")


@import_.command("devices")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_devices_cmd(file: Path) -> None:
    """Import devices from a CSV or YAML file (id,vendor,kind,area_code,address,…)."""
    from hub.access import audit
    from hub.fleet.registry import RegistryError, import_device_file

    rt = _checked_runtime()
    try:
        with rt.db.session() as s:
            n = import_device_file(s, rt.plugins, file, rt.address_policy())
            audit.record(s, cli_actor(), "devices.import", "device", None, {"rows": n, "source": str(file)})
    except RegistryError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"imported {n} devices")


def _parse_param(raw: str) -> tuple[str, Any]:
    if "=" not in raw:
        raise Failure(f"--param {raw!r}: expected KEY=VALUE")
    key, value = raw.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


@cli.command()
@click.argument("verb")
@click.option("--area", "areas", multiple=True, help="Area code (includes its subtree).")
@click.option("--device", "devices", multiple=True, help="Device id.")
@click.option("--group", "groups", multiple=True, help="Group id.")
@click.option("--kind", "kinds", multiple=True, help="Only devices of this kind.")
@click.option("--param", "params", multiple=True, help="Verb parameter KEY=VALUE (VALUE as JSON if it parses).")
@click.option("--content", "content_id", help="Content id to play or show.")
@click.option("--priority", type=click.Choice(PRIORITIES))
@click.option("--at", "start_at", help="Start at this ISO 8601 time with its UTC offset (e.g. "
              "2026-12-01T07:00:00+07:00); deliveries stay scheduled until then. `hub scheduler` must run.")
@click.option("--expires-in", type=float, help="Seconds until undelivered devices end expired (counted from --at "
              "when given).")
@click.option("--idempotency-key")
@click.option("--wait", type=float, default=0, help="Wait up to this many seconds for every device to finish.")
def send(verb: str, areas: tuple[str, ...], devices: tuple[str, ...], groups: tuple[str, ...],
         kinds: tuple[str, ...], params: tuple[str, ...], content_id: str | None, priority: str | None,
         start_at: str | None, expires_in: float | None, idempotency_key: str | None, wait: float) -> None:
    """Send VERB (play, stop, set_volume, led_show, …) to the devices selected."""
    from hub.delivery.dispatch import DispatchError, submit
    from hub.schemas import CommandSchema

    raw: dict[str, Any] = {"verb": verb, "params": dict(_parse_param(p) for p in params),
                           "target": {k: list(v) for k, v in (("areas", areas), ("devices", devices),
                                                                ("groups", groups), ("kinds", kinds)) if v}}
    if content_id:
        raw["content_id"] = content_id
    if priority:
        raw["priority"] = priority
    if start_at:
        raw["start_at"] = start_at  # the schema parses it and names the option's field when it is wrong
    if expires_in is not None:
        begins = datetime.now(timezone.utc)
        if start_at:
            try:
                begins = max(begins, datetime.fromisoformat(start_at))
            except (TypeError, ValueError):
                pass  # reported by the schema below
        try:
            raw["expires_at"] = (begins + timedelta(seconds=expires_in)).isoformat()
        except (OverflowError, ValueError):  # 1e12 runs past year 9999; nan is no duration
            raise Failure(f"--expires-in {expires_in:g}: not a number of seconds a command can wait") from None
    if idempotency_key:
        raw["idempotency_key"] = idempotency_key
    try:
        data = CommandSchema().load(raw)
    except ValidationError as exc:
        raise Failure(first_error(exc.messages)) from None
    rt = _checked_runtime()
    try:
        result = submit(rt, cli_actor(), data)
    except DispatchError as exc:
        raise Failure(str(exc)) from None
    cmd = result.command
    click.echo(f"command {cmd.id} {'accepted' if result.created else 'already sent (same idempotency key)'}: "
               f"{cmd.total} devices; " + _fmt_counts(result.counts)
               + (f"; starts at {cmd.start_at.isoformat()}" if cmd.start_at else ""))
    if wait > 0:
        counts = _wait_terminal(rt, cmd.id, wait)
        click.echo("finished: " + _fmt_counts(counts))


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "no devices selected"


def _wait_terminal(rt: Any, command_id: str, timeout: float) -> dict[str, int]:
    from hub.delivery.dispatch import counts as count_states

    deadline = time.monotonic() + timeout
    while True:
        with rt.db.session() as s:
            c = count_states(s, command_id)
        if sum(c[s] for s in ACTIVE_STATES) == 0 or time.monotonic() > deadline:
            return c
        time.sleep(0.2)


@cli.command()
@click.argument("command_id")
@click.option("--state", help="Only deliveries in this state.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def deliveries(command_id: str, state: str | None, as_json: bool) -> None:
    """Show every device's delivery state for a command."""
    from sqlalchemy import select

    from hub.store.models import Command, Delivery

    rt = _checked_runtime()
    with rt.db.session() as s:
        if s.get(Command, command_id) is None:
            raise Failure(f"no command {command_id}")
        q = select(Delivery).where(Delivery.command_id == command_id).order_by(Delivery.device_id)
        if state:
            q = q.where(Delivery.state == state)
        for d in s.scalars(q):
            if as_json:
                click.echo(json.dumps({"device_id": d.device_id, "vendor": d.vendor, "state": d.state,
                                       "reason": d.reason, "attempts": d.attempts, "result": d.result},
                                      ensure_ascii=False))
            else:  # the device's read-back (Ack.detail), as the API shows it
                result = json.dumps(d.result, ensure_ascii=False) if d.result else ""
                click.echo(f"{d.device_id:<24} {d.vendor:<16} {d.state:<12} {d.reason or ''} {result}".rstrip())


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def plugins(as_json: bool) -> None:
    """List installed plugins with versions and capabilities."""
    from hub.plugins import PluginError

    rt = _runtime()
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
        click.echo(f"{p['name']} {p['version']}  ({p['group']}, {p['distribution']})")
        for v in p.get("vendors", []):
            click.echo(f"  vendor {v['name']}: {', '.join(v['device_kinds'])} over {', '.join(v['protocols'])}")
            click.echo(f"    capabilities: {', '.join(v['capabilities'])}")


@cli.group()
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


def _note_config(rt: Any, process: str) -> None:
    """A process that starts with changed settings says so in the audit log."""
    from hub.access.audit import record_config

    with rt.db.session() as s:
        record_config(s, rt.settings, process)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True)
def serve(host: str, port: int) -> None:
    """Run the REST API (development server; use gunicorn hub.wsgi:app in production)."""
    from hub.api import create_app

    rt = _checked_runtime()
    _note_config(rt, "serve")
    create_app(rt).run(host=host, port=port, threaded=True)


@cli.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--name", help="Worker name (default: generated).")
def worker(burst: bool, name: str | None) -> None:
    """Run a job worker (send batches to devices). Run several for throughput."""
    from hub.delivery.worker import make_worker

    rt = _checked_runtime()
    _note_config(rt, "worker")
    w = make_worker(rt, name=name)
    w.work(burst=burst, logging_level="INFO")


@cli.group(invoke_without_command=True)
@click.pass_context
def ingest(ctx: click.Context) -> None:
    """Receive acks, status and presence from devices, and expire overdue deliveries.
    `hub ingest quarantine` lists the messages it could not store."""
    if ctx.invoked_subcommand is not None:
        return
    from hub.delivery.ingest import Ingest
    from hub.vendor import TransientError

    rt = _checked_runtime()
    _note_config(rt, "ingest")
    ing = Ingest(rt)
    try:
        ing.start()
    except TransientError as exc:
        raise Failure(str(exc)) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo("ingest running; Ctrl-C to stop")
    stop.wait()
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

    rt = _checked_runtime()
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


@cli.command()
@click.option("--name", help="Instance name in logs and in the leader lock (default: host-pid-random).")
def scheduler(name: str | None) -> None:
    """Release scheduled commands to the workers on time. Run one or two (one leads, on a Redis lock)."""
    from hub.delivery.release import Scheduler

    rt = _checked_runtime()
    _note_config(rt, "scheduler")
    sched = Scheduler(rt, name=name)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sched.start()
    click.echo(f"scheduler {sched.name} running (lead {rt.settings.scheduler_lead_s:g} s); Ctrl-C to stop")
    while not stop.wait(1.0):
        if not sched.alive():
            raise Failure("scheduler loop ended unexpectedly")
    sched.stop()
    click.echo(f"scheduler stopped: {sched.stats}")


@cli.command("cancel")
@click.argument("command_id")
def cancel_cmd(command_id: str) -> None:
    """Cancel a scheduled command before it starts (its deliveries end superseded)."""
    from hub.delivery.dispatch import DispatchError, cancel

    rt = _checked_runtime()
    try:
        result = cancel(rt, cli_actor(), command_id)
    except DispatchError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"command {command_id} cancelled: " + _fmt_counts(result.counts))


@cli.command()
def sweep() -> None:
    """End every overdue delivery `expired` once (ingest does this continuously)."""
    from hub.delivery.states import expire_due

    rt = _checked_runtime()
    with rt.db.session() as s:
        n = len(expire_due(s))
    click.echo(f"expired {n} deliveries")


@cli.command()
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


register_admin_commands(cli)
register_content_commands(cli)


def _load_plugin_commands() -> None:
    try:
        from hub.plugins import get_plugins

        get_plugins().pm.hook.register_commands(cli=cli)
    except Exception as exc:  # a broken plugin must not take the CLI down with it
        click.echo(f"hub: warning: plugin commands not loaded: {exc}", err=True)


def main() -> None:
    _load_plugin_commands()
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
