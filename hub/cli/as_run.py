"""`hub as-run`: what devices actually played (proof of play), as GET /api/as-run shows it —
segments from acks and status, the planned slot beside each, and plays that never reached the air."""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

import click

from hub.cli.common import Failure, checked_runtime
from hub.hookspecs import hookimpl


def _day_bounds(day: str | None, since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """--date D (a local day, Asia/Ho_Chi_Minh) or --from/--to instants (ISO 8601 with an offset)."""
    from hub.broadcast.programmes import LOCAL_TZ

    def instant(value: str, name: str) -> datetime:
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise Failure(f"--{name}: {value!r} is not ISO 8601") from None
        return dt if dt.tzinfo else dt.replace(tzinfo=LOCAL_TZ)  # a bare time is the province's

    if day is not None:
        if since or until:
            raise Failure("--date and --from/--to are exclusive")
        try:
            d = date.fromisoformat(day)
        except ValueError:
            raise Failure(f"--date: {day!r} is not YYYY-MM-DD") from None
        start = datetime.combine(d, time(0), LOCAL_TZ)
        return start, start + timedelta(days=1)
    return (instant(since, "from") if since else None), (instant(until, "to") if until else None)


@click.command("as-run")
@click.option("--device", "device_id", help="One device id.")
@click.option("--area", help="Devices in this area's subtree.")
@click.option("--date", "day", help="One local day (YYYY-MM-DD, Asia/Ho_Chi_Minh).")
@click.option("--from", "since", help="From this instant (ISO 8601; no offset: local time).")
@click.option("--to", "until", help="Before this instant.")
@click.option("--command", "command_id", help="One command (its resumes included).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, as the API gives them.")
def as_run_command(device_id: str | None, area: str | None, day: str | None, since: str | None,
                   until: str | None, command_id: str | None, as_json: bool) -> None:
    """What devices actually played: start, end, outcome, what interrupted it, the planned slot."""
    from sqlalchemy import select

    from hub.reports.as_run import rows
    from hub.store.models import Area

    lo, hi = _day_bounds(day, since, until)
    rt = checked_runtime(audit_key=False)
    with rt.db.session() as s:
        path = None
        if area is not None:
            path = s.scalar(select(Area.path).where(Area.code == area))
            if path is None:
                raise Failure(f"--area: unknown area code {area}")
        got = rows(s, None, device_id=device_id, area_path=path, since=lo, until=hi, command_id=command_id)
    for r in got:
        if as_json:
            click.echo(json.dumps(r, ensure_ascii=False))
            continue
        by = r["interrupted_by"]
        click.echo("  ".join([
            f"{r['device_id']} ({r['commune']})", r["started_at"] or "-", r["ended_at"] or "-",
            f"{r['outcome']:<11}", f"{r['priority']}/{r['verb']}", r["command_id"],
            f"by {by['priority']} {by['command_id']}" if by else "",
            f"planned until {r['planned']['expires_at']}" if r["planned"]["expires_at"] else "",
            r["reason"] or ""]).rstrip())
    if not got and not as_json:
        click.echo("nothing played or planned for these filters")


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(as_run_command)
