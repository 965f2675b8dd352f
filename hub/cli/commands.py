"""`hub send`, `hub cancel` and `hub deliveries`: commands to devices and what became of them."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import click
from marshmallow import ValidationError

from hub.capabilities import PRIORITIES
from hub.cli.common import Failure, checked_runtime, cli_actor, first_error
from hub.hookspecs import hookimpl
from hub.store.models import ACTIVE_STATES


def _parse_param(raw: str) -> tuple[str, Any]:
    if "=" not in raw:
        raise Failure(f"--param {raw!r}: expected KEY=VALUE")
    key, value = raw.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _numbers(raw: str, option: str, what: str) -> list[Any]:
    """'10.53,106.4' → [10.53, 106.4]; the schema then checks ranges and shapes, naming the field."""
    out: list[Any] = []
    for part in raw.split(","):
        try:
            out.append(float(part))
        except ValueError:
            raise Failure(f"{option} {raw!r}: expected {what}") from None
    return out


def _geometry(polygons: tuple[str, ...], circles: tuple[str, ...]) -> dict[str, Any]:
    shapes: dict[str, Any] = {}
    if polygons:
        shapes["polygons"] = [[_numbers(p, "--polygon", "LAT,LON LAT,LON LAT,LON …") for p in ring.split()]
                              for ring in polygons]
    if circles:
        shapes["circles"] = [_numbers(c, "--circle", "LAT,LON,RADIUS_KM") for c in circles]
    return {"geometry": shapes} if shapes else {}


@click.command()
@click.argument("verb")
@click.option("--area", "areas", multiple=True, help="Area code (includes its subtree).")
@click.option("--device", "devices", multiple=True, help="Device id.")
@click.option("--group", "groups", multiple=True, help="Group id.")
@click.option("--kind", "kinds", multiple=True, help="Only devices of this kind.")
@click.option("--polygon", "polygons", multiple=True, help="Devices inside this ring of points, latitude first: "
              "'10.53,106.40 10.53,106.43 10.55,106.40'. With --area/--device/--group it narrows them.")
@click.option("--circle", "circles", multiple=True, help="Devices within RADIUS_KM of a point: 'LAT,LON,RADIUS_KM'.")
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
         kinds: tuple[str, ...], polygons: tuple[str, ...], circles: tuple[str, ...], params: tuple[str, ...], content_id: str | None, priority: str | None,
         start_at: str | None, expires_in: float | None, idempotency_key: str | None, wait: float) -> None:
    """Send VERB (play, stop, set_volume, led_show, …) to the devices selected."""
    from hub.delivery.dispatch import DispatchError, submit
    from hub.schemas import CommandSchema

    raw: dict[str, Any] = {"verb": verb, "params": dict(_parse_param(p) for p in params),
                           "target": {k: list(v) for k, v in (("areas", areas), ("devices", devices),
                                                                ("groups", groups), ("kinds", kinds)) if v}
                           | _geometry(polygons, circles)}
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
    rt = checked_runtime()
    try:
        result = submit(rt, cli_actor(), data)
    except DispatchError as exc:
        raise Failure(str(exc) + (f" (rule {exc.rule})" if exc.rule else "")) from None
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


@click.command()
@click.argument("command_id")
@click.option("--state", help="Only deliveries in this state.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def deliveries(command_id: str, state: str | None, as_json: bool) -> None:
    """Show every device's delivery state for a command."""
    from sqlalchemy import select

    from hub.store.models import Command, Delivery

    rt = checked_runtime()
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



@click.command("cancel")
@click.argument("command_id")
def cancel_cmd(command_id: str) -> None:
    """Cancel a scheduled command before it starts (its deliveries end superseded)."""
    from hub.delivery.dispatch import DispatchError, cancel

    rt = checked_runtime()
    try:
        result = cancel(rt, cli_actor(), command_id)
    except DispatchError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"command {command_id} cancelled: " + _fmt_counts(result.counts))


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(send)
    register(cancel_cmd)
    register(deliveries)
