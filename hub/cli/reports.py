"""`hub reports statistics`: the statistics report (hub.reports.statistics) of an area and period
of local dates, as GET /api/reports/statistics gives it — a table on the terminal, or JSON, CSV or
XLSX to a file."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click

from hub.cli.common import Failure, checked_runtime
from hub.hookspecs import hookimpl


@click.group("reports")
def reports() -> None:
    """Reports computed from what devices confirmed."""


@reports.command("statistics")
@click.option("--area", help="An area code, with its subtree (default: every area at the top of the tree).")
@click.option("--from", "first", required=True, help="First local date, YYYY-MM-DD (the setting timezone).")
@click.option("--to", "last", required=True, help="Last local date, YYYY-MM-DD, included.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "xlsx"]), default=None,
              help="Default: xlsx when -o names a .xlsx file, else table (json, csv likewise by extension).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
def statistics_command(area: str | None, first: str, last: str, fmt: str | None, output: Path | None) -> None:
    """Bulletins, minutes broadcast, uptime, delivery success, emergency reach per area."""
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from hub.reports import statistics, statistics_export
    from hub.store.models import Area

    if fmt is None:
        fmt = output.suffix.lstrip(".").lower() if output and output.suffix.lower() in (".json", ".csv", ".xlsx") \
            else "table"
    if fmt == "xlsx" and output is None:
        raise Failure("--format xlsx needs -o FILE")
    rt = checked_runtime(audit_key=False)
    try:
        period = statistics.Period.of(statistics.parse_day(first, "from"), statistics.parse_day(last, "to"),
                                      ZoneInfo(rt.settings.timezone))
        with rt.db.session() as s:
            roots = [area] if area else list(s.scalars(select(Area.code).where(Area.parent_code.is_(None))
                                                       .order_by(Area.code)))
            report = statistics.compute(s, roots, period).as_dict()
    except statistics.PeriodError as exc:
        raise Failure(f"--{exc.field}: {exc}") from None
    if fmt == "table":
        lines = [f"{'area':<28} {'devices':>7} {'uptime%':>7} {'bulletins':>9} {'minutes':>9} "
                 f"{'deliv.ok%':>9} {'emerg.%':>7} {'not played':>10}"]
        for r in report["areas"]:
            def pct(v: float | None) -> str:
                return "-" if v is None else f"{v:.1f}"
            lines.append(f"{'  ' * r['depth'] + r['area_code'] + ' ' + r['area_name']:<28.28} {r['devices']:>7} "
                         f"{pct(r['uptime_percent']):>7} {r['bulletins']:>9} {r['minutes_broadcast']:>9.1f} "
                         f"{pct(r['delivery_success_percent']):>9} {pct(r['emergency_reach_percent']):>7} "
                         f"{r['not_played']:>10}")
        data = ("\n".join(lines) + "\n").encode()
    elif fmt == "json":
        data = (json.dumps(report, ensure_ascii=False, indent=1) + "\n").encode()
    elif fmt == "csv":
        data = statistics_export.to_csv(report)
    else:
        data = statistics_export.to_xlsx(report)
    if output is None:
        click.echo(data.decode("utf-8-sig"), nl=False)
    else:
        output.write_bytes(data)
        click.echo(f"wrote {output} ({len(report['areas'])} areas, {report['from']} to {report['to']})", err=True)


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(reports)
