"""`hub relays` (start, stop, list, run: the process that owns Icecast) and `hub stations list`."""
from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from typing import Any

import click

from hub.capabilities import PRIORITIES
from hub.cli.common import Failure, checked_runtime, cli_actor
from hub.hookspecs import hookimpl


@click.group("relays")
def relays() -> None:
    """Live broadcasts and relays of stations through the hub's Icecast."""


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


@relays.command("start")
@click.option("--station", "station_id", help="A station of the stations file (hub stations list).")
@click.option("--content", "content_id", help="A published content whose audio goes on air, once.")
@click.option("--live", is_flag=True, help="An operator's live source; prints where to send it.")
@click.option("--area", "areas", multiple=True, help="Area code (includes its subtree).")
@click.option("--device", "devices", multiple=True, help="Device id.")
@click.option("--group", "groups", multiple=True, help="Group id.")
@click.option("--priority", type=click.Choice(PRIORITIES))
def start(station_id: str | None, content_id: str | None, live: bool, areas: tuple[str, ...],
          devices: tuple[str, ...], groups: tuple[str, ...], priority: str | None) -> None:
    """Start a session and send relay_start to the devices selected."""
    from hub.broadcast.relay.sessions import describe, start_session
    from hub.delivery.dispatch import DispatchError

    rt = checked_runtime()
    target = {k: list(v) for k, v in (("areas", areas), ("devices", devices), ("groups", groups)) if v}
    data: dict[str, Any] = {"station_id": station_id, "content_id": content_id, "live": live, "target": target}
    if priority:
        data["priority"] = priority
    try:
        row, sub = start_session(rt, cli_actor(), data)
    except DispatchError as exc:
        raise Failure(str(exc)) from None
    click.echo(_json(describe(rt.settings, row, with_source=True) | {"devices": sub.counts}))


@relays.command("stop")
@click.argument("relay_id")
def stop(relay_id: str) -> None:
    """Send relay_stop to the session's devices and take it off air."""
    from hub.broadcast.relay.sessions import stop_session
    from hub.delivery.dispatch import DispatchError

    rt = checked_runtime()
    try:
        row, sub = stop_session(rt, cli_actor(), relay_id)
    except DispatchError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"relay {row.id}: stopping; relay_stop command {sub.command.id} to {sub.command.total} devices")


@relays.command("list")
@click.option("--all", "show_all", is_flag=True, help="Stopped sessions too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, with each session's events.")
def list_relays(show_all: bool, as_json: bool) -> None:
    """Sessions, newest first: state, listeners, dead-air episodes."""
    from sqlalchemy import select

    from hub.broadcast.relay.sessions import describe, events_of
    from hub.store.relay_tables import RelaySession

    rt = checked_runtime(audit_key=False)
    with rt.db.session() as s:
        stmt = select(RelaySession).order_by(RelaySession.created_at.desc())
        if not show_all:
            stmt = stmt.where(RelaySession.desired == "running")
        rows = [describe(rt.settings, r, events=events_of(s, r.id)) for r in s.scalars(stmt)]
    if as_json:
        click.echo(_json(rows))
        return
    if not rows:
        click.echo("no relays" + ("" if show_all else " running (--all shows stopped ones)"))
    for r in rows:
        source = r["station_id"] or r["content_id"] or "live"
        click.echo(f"{r['id']}  {r['kind']:<7} {source:<20} {r['state']:<9} listeners {r['listeners']:<4} "
                   f"dead air {r['dead_air']:<3} {r['listen_url']}")


@relays.command("run")
def run() -> None:
    """Run the hub's Icecast and the sessions' sources, reconciling with the database."""
    from hub.broadcast.relay.service import RelayService
    from hub.cli.processes import note_config

    rt = checked_runtime()
    note_config(rt, "relays")
    stop_event = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: stop_event.set())
    service = RelayService(rt)
    try:
        service.start()
    except Exception as exc:  # icecast2 or ffmpeg missing, the port taken: one line, not a traceback
        service.stop()
        raise Failure(f"cannot start the relay service: {exc}") from None
    click.echo(f"Icecast on {rt.settings.icecast_host}:{rt.settings.icecast_port}; relays reconciled every "
               f"{rt.settings.relay_tick_s:g} s; Ctrl-C to stop")
    try:
        service.run(stop_event)
    finally:
        service.stop()


@click.group("stations")
def stations() -> None:
    """The stations a province relays (the stations file)."""


@stations.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_stations(as_json: bool) -> None:
    """Every station of the stations file, checked."""
    from hub.broadcast.relay.stations import StationError, load_stations

    rt = checked_runtime(audit_key=False)
    try:
        found = load_stations(rt.settings)
    except StationError as exc:
        raise Failure(str(exc)) from None
    if as_json:
        click.echo(_json([s.to_dict() for s in found.values()]))
        return
    if not found:
        click.echo("no stations" + ("" if rt.settings.stations_file else " (stations_file is not set)"))
    for st in found.values():
        click.echo(f"{st.id:<16} {st.name:<40} {st.url}" + (f"  areas {', '.join(st.areas)}" if st.areas else ""))


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(relays)
    register(stations)
