"""`hub import areas|devices`: load the administrative tree and the device registry from files."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from hub.cli.common import Failure, checked_runtime, cli_actor
from hub.hookspecs import hookimpl


@click.group("import")
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
    rt = checked_runtime()
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

    rt = checked_runtime()
    try:
        with rt.db.session() as s:
            n = import_device_file(s, rt.plugins, file, rt.address_policy())
            audit.record(s, cli_actor(), "devices.import", "device", None, {"rows": n, "source": str(file)})
    except RegistryError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"imported {n} devices")


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(import_)
