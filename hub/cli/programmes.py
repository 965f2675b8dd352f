"""`hub programmes`: keep broadcast programmes (lịch phát) from the command line — list, show, add,
import and export `.ics`, occurrences, delete — through hub.broadcast.editing, the API's rules and
audit entries; a refusal is one line naming the field."""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from marshmallow import ValidationError

from hub.capabilities import DEFAULT_PRIORITY, PRIORITIES
from hub.cli.common import Failure, checked_runtime, cli_actor, first_error
from hub.hookspecs import hookimpl


@click.group("programmes")
def programmes() -> None:
    """Broadcast programmes (lịch phát): recurring slots kept as iCalendar."""


@contextmanager
def _refusals() -> Iterator[None]:
    from hub.broadcast.programmes import ProgrammeError
    from hub.broadcast.rules import ProgrammeRefused
    from hub.fleet.areas import AreaError

    try:
        yield
    except ProgrammeRefused as exc:  # an overlap's message names the first and counts them all
        raise Failure(f"{exc.field}: {exc.message}" if exc.field else exc.message) from None
    except (ProgrammeError, AreaError) as exc:
        raise Failure(str(exc)) from None


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Failure(f"{path}: {exc}") from None


def _target(spec: str | None, areas: tuple[str, ...], devices: tuple[str, ...], groups: tuple[str, ...]) -> dict:
    """A target from a JSON text, or from --area/--device/--group."""
    if spec:
        if spec.lstrip().startswith("{"):
            try:
                return json.loads(spec)
            except ValueError as exc:
                raise Failure(f"--target: not JSON: {exc}") from None
        areas = (*areas, *(a.strip() for a in spec.split(",") if a.strip()))
    out = {k: list(v) for k, v in (("areas", areas), ("devices", devices), ("groups", groups)) if v}
    return out


def _what(content: str | None, playlist: tuple[str, ...], stream: str | None) -> dict[str, Any]:
    return {k: v for k, v in (("content_id", content), ("playlist", list(playlist) or None), ("stream_url", stream))
            if v}


def _load(schema: Any, raw: dict[str, Any]) -> dict[str, Any]:
    try:
        return schema.load(raw)
    except ValidationError as exc:
        raise Failure(first_error(exc.messages)) from None


def _when(text: str | None, default: datetime) -> datetime:
    """An ISO time; without an offset it is local time (+07:00)."""
    from hub.broadcast.programmes import LOCAL_TZ

    if not text:
        return default
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise Failure(f"{text!r} is not an ISO date or time (2025-06-02 or 2025-06-02T06:00)") from None
    return at if at.tzinfo else at.replace(tzinfo=LOCAL_TZ)


def _line(p: Any) -> str:
    plays = p.content_id or (f"playlist of {len(p.playlist)}" if p.playlist else p.stream_url)
    return f"{p.id}  {p.name}  [{p.area_code or '-'}] {p.priority}  {plays}  r{p.revision or 0}"


@programmes.command("list")
@click.option("--area", help="Only programmes playing in this area.")
def list_(area: str | None) -> None:
    """One line per programme: id, name, area, class, what it plays, revision."""
    from hub.broadcast import editing

    rt = checked_runtime(audit_key=False)
    with rt.db.session() as s, _refusals():
        for p in editing.listed(s, cli_actor(), area):
            click.echo(_line(p))


@programmes.command("show")
@click.argument("programme_id")
def show(programme_id: str) -> None:
    """A programme as JSON."""
    from hub.api.programme_schemas import ProgrammeOutSchema
    from hub.broadcast import editing

    rt = checked_runtime(audit_key=False)
    with rt.db.session() as s, _refusals():
        p = editing.get(s, cli_actor(), programme_id)
        click.echo(json.dumps(ProgrammeOutSchema().dump({k: getattr(p, k) for k in ProgrammeOutSchema().fields
                                                        if hasattr(p, k)}), ensure_ascii=False, indent=2))


@programmes.command("add")
@click.option("--json", "json_file", help="A JSON file holding the whole programme (as POST /api/programmes).")
@click.option("--name")
@click.option("--ics", "ics_file", help="The programme's calendar: an .ics file with one event series.")
@click.option("--target", "target_spec", help="Target as JSON, or comma-separated area codes.")
@click.option("--area", "areas", multiple=True)
@click.option("--device", "devices", multiple=True)
@click.option("--group", "groups", multiple=True)
@click.option("--content", help="A published content id.")
@click.option("--playlist", multiple=True, help="Published content ids, in order (repeat the option).")
@click.option("--stream", help="An http(s) stream URL to relay.")
@click.option("--priority", type=click.Choice([p for p in PRIORITIES if p != "emergency"]), default=DEFAULT_PRIORITY)
@click.option("--valid-from")
@click.option("--valid-until")
@click.option("--keep-overlap", is_flag=True, help="Keep overlaps with other programmes (needs --precedence).")
@click.option("--precedence", type=int)
def add(json_file: str | None, name: str | None, ics_file: str | None, target_spec: str | None,
        areas: tuple[str, ...], devices: tuple[str, ...], groups: tuple[str, ...], content: str | None,
        playlist: tuple[str, ...], stream: str | None, priority: str, valid_from: str | None,
        valid_until: str | None, keep_overlap: bool, precedence: int | None) -> None:
    """Create a programme; prints its id and how many commands it made."""
    from hub.api.programme_schemas import ProgrammeSchema
    from hub.broadcast import editing

    if json_file:
        try:
            raw = json.loads(_read(json_file))
        except ValueError as exc:
            raise Failure(f"{json_file}: not JSON: {exc}") from None
    else:
        raw = {"name": name, "ical": _read(ics_file) if ics_file else None,
               "target": _target(target_spec, areas, devices, groups), "priority": priority,
               **_what(content, playlist, stream)}
        for key, text in (("valid_from", valid_from), ("valid_until", valid_until)):
            if text:
                raw[key] = _when(text, datetime.now()).isoformat()
        raw = {k: v for k, v in raw.items() if v is not None}
    if keep_overlap:
        raw["overlap"] = "keep"
    if precedence is not None:
        raw["precedence"] = precedence
    data = _load(ProgrammeSchema(), raw)
    rt = checked_runtime()
    with _refusals():
        saved = editing.create(rt, cli_actor(), data)
    p, m = saved.programmes[0], saved.materialised
    click.echo(f"programme {p.id} created; {len(m.created) if m else 0} commands made")


@programmes.command("import")
@click.argument("ics_file")
@click.option("--target", "target_spec", help="Target as JSON, or comma-separated area codes (for every event).")
@click.option("--area", "areas", multiple=True)
@click.option("--device", "devices", multiple=True)
@click.option("--content", help="A published content id (for every event).")
@click.option("--playlist", multiple=True)
@click.option("--stream")
@click.option("--priority", type=click.Choice([p for p in PRIORITIES if p != "emergency"]), default=DEFAULT_PRIORITY)
@click.option("--keep-overlap", is_flag=True)
@click.option("--precedence", type=int)
def import_(ics_file: str, target_spec: str | None, areas: tuple[str, ...], devices: tuple[str, ...],
            content: str | None, playlist: tuple[str, ...], stream: str | None, priority: str, keep_overlap: bool,
            precedence: int | None) -> None:
    """One programme per event series of FILE.ics, each playing the same thing in the same place."""
    from hub.api.programme_schemas import ImportSchema
    from hub.broadcast import editing

    raw: dict[str, Any] = {"ics": _read(ics_file), "common": {
        "target": _target(target_spec, areas, devices, ()), "priority": priority, **_what(content, playlist, stream)}}
    if keep_overlap:
        raw["overlap"] = "keep"
    if precedence is not None:
        raw["precedence"] = precedence
    data = _load(ImportSchema(), raw)
    rt = checked_runtime()
    with _refusals():
        saved = editing.import_calendar(rt, cli_actor(), data["ics"], data.get("common"), data["per_uid"],
                                        data.get("overlap", "refuse"), data.get("precedence"))
    for p in saved.programmes:
        click.echo(f"programme {p.id} imported: {p.name}")


@programmes.command("export")
@click.option("--area", help="Only programmes playing in this area.")
def export(area: str | None) -> None:
    """Write the programmes as one .ics to standard output (hub programmes export > lich.ics)."""
    from hub.broadcast import editing
    from hub.broadcast.ics import export_ics

    rt = checked_runtime(audit_key=False)
    with rt.db.session() as s, _refusals():
        click.echo(export_ics(editing.listed(s, cli_actor(), area)), nl=False)


@programmes.command("occurrences")
@click.argument("programme_id")
@click.option("--from", "start", help="ISO date or time, local unless it has an offset (default: now).")
@click.option("--to", "end", help="Default: 7 days after --from.")
def occurrences_(programme_id: str, start: str | None, end: str | None) -> None:
    """The programme's occurrences in local time, one per line: start, end, and the slot a moved one replaces."""
    from hub.broadcast import editing
    from hub.broadcast.programmes import LOCAL_TZ, occurrences

    lo = _when(start, datetime.now(LOCAL_TZ))
    hi = _when(end, lo + timedelta(days=7))
    rt = checked_runtime(audit_key=False)
    with rt.db.session() as s, _refusals():
        for o in occurrences(editing.get(s, cli_actor(), programme_id), lo, hi):
            moved = f"  (moved from {o.slot.astimezone(LOCAL_TZ).isoformat()})" if o.slot != o.start else ""
            click.echo(f"{o.start.astimezone(LOCAL_TZ).isoformat()}  {o.end.astimezone(LOCAL_TZ).isoformat()}{moved}")


@programmes.command("delete")
@click.argument("programme_id")
def delete(programme_id: str) -> None:
    """Delete a programme; its commands not yet started are cancelled."""
    from hub.broadcast import editing

    rt = checked_runtime()
    with _refusals():
        cancelled = editing.delete(rt, cli_actor(), programme_id)
    click.echo(f"programme {programme_id} deleted; {len(cancelled)} commands cancelled")


@hookimpl
def register_cli_groups(register: Any) -> None:
    register(programmes)
