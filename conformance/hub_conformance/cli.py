"""`hub certify` and `hub plugin new`, added to the hub's CLI through register_commands (entry
point group hub.tools), and the stand-alone `hub-certify` command."""
from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from hub.hookspecs import hookimpl
from hub.simulation import FAULT_MODES

from hub_conformance import params as params_mod
from hub_conformance import reports, runner
from hub_conformance.results import EXIT_CODES

_PARAM_OPTIONS = (
    ("--ack-timeout", "ack_timeout_s"),
    ("--status-timeout", "status_timeout_s"),
    ("--heartbeat-interval", "heartbeat_interval_s"),
    ("--heartbeat-timeout", "heartbeat_timeout_s"),
    ("--offline-timeout", "offline_timeout_s"),
    ("--recovery-timeout", "recovery_timeout_s"),
    ("--max-clock-skew", "max_clock_skew_s"),
)


def _param_options(fn):  # noqa: ANN001, ANN202 - a click decorator
    for option, name in reversed(_PARAM_OPTIONS):
        p = params_mod.PARAMETERS[name]
        fn = click.option(option, name, type=float, default=None, metavar="SECONDS",
                          help=f"{p.description} Default {p.default_device:g} s for devices, "
                               f"{p.default_simulator:g} s for a simulator (the hub's choice).")(fn)
    return fn


@click.command("certify")
@click.argument("plugin")
@click.option("--target", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Target YAML: the adapter configuration and the devices to certify (see the guide).")
@click.option("--simulator", is_flag=True, help="Drive the plugin's registered simulator instead of real devices.")
@click.option("--strict/--lenient", "strict", default=True, show_default=True,
              help="Strict: recommended requirements fail the run and timing is tight (×1.25). "
                   "Lenient: they are warnings and timing is forgiving (×2).")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write report.json, report.html and junit.xml "
                   "[default: ./hub-certify-reports/PLUGIN-TIMESTAMP].")
@_param_options
@click.option("--param", "param_items", multiple=True, metavar="NAME=VALUE",
              help=f"Any suite parameter ({', '.join(params_mod.PARAMETERS)}).")
@click.option("--fault", "faults", multiple=True, metavar="MODE|ADDRESS=MODE",
              help=f"With --simulator: make devices misbehave on purpose ({', '.join(FAULT_MODES)}), "
                   "to see the suite catch it.")
@click.option("-k", "select", metavar="EXPR", help="Run only the checks matching this pytest -k expression.")
@click.option("-v", "--verbose", is_flag=True, help="Show pytest's own output while the checks run.")
def certify(plugin: str, target: Path | None, simulator: bool, strict: bool, report_dir: Path | None,
            param_items: tuple[str, ...], faults: tuple[str, ...], select: str | None, verbose: bool,
            **timing: float | None) -> None:
    """Certify the vendor plugin PLUGIN against the hub's requirement catalogue.

    Plays the hub's side (real dispatch, job and ingest) and drives the plugin's simulator
    (--simulator) or the real devices of a target file (--target). Exit status: 0 pass,
    1 fail, 3 incomplete (something applicable could not be verified), 2 the suite could not run.
    """
    if not simulator and target is None:
        raise click.UsageError("give --simulator, or --target FILE describing real devices")
    if faults and not simulator:
        raise click.UsageError("--fault needs --simulator")
    try:
        chosen = params_mod.parse_assignments(list(param_items))
    except params_mod.ParameterError as exc:
        raise click.UsageError(str(exc)) from None
    chosen.update({k: v for k, v in timing.items() if v is not None})
    if report_dir is None:
        report_dir = Path("hub-certify-reports") / f"{plugin}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    mode = "strict" if strict else "lenient"
    click.echo(f"certifying {plugin} ({mode}, {'simulator' if simulator else 'target ' + str(target)}) …")
    result = runner.run(plugin, report_dir=report_dir, simulator=simulator, target=target, mode=mode,
                        params=chosen, faults=faults, select=select, echo=verbose)
    if result.report is None:
        click.echo(f"hub: error: {runner.usage_error(result.output)}", err=True)
        click.echo(f"  (pytest output: {report_dir / 'pytest-output.txt'})", err=True)
        sys.exit(runner.SETUP_ERROR)
    click.echo(reports.summary_text(result.report, report_dir))
    sys.exit(EXIT_CODES[result.report["verdict"]])


@click.group("plugin")
def plugin_group() -> None:
    """Tools for vendor plugin authors."""


@plugin_group.command("new")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where to create the plugin's project folder.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(["speaker", "led_board"]),
              help="Device kinds the plugin drives (repeatable) [default: speaker and led_board].")
@click.option("--title", help="Human title of the vendor's devices.")
@click.option("--force", is_flag=True, help="Write into an existing, non-empty folder.")
def plugin_new(name: str, directory: Path, kinds: tuple[str, ...], title: str | None, force: bool) -> None:
    """Scaffold a vendor plugin distribution called hub-vendor-NAME in DIR."""
    from hub_conformance import scaffold

    try:
        root = scaffold.create(name, directory, kinds=kinds or ("speaker", "led_board"), title=title, force=force)
    except scaffold.ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {root}")
    click.echo("next: pip install -e " + str(root) + f" && hub certify {name} --simulator --lenient")


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(certify)
    cli.add_command(plugin_group)


def certify_main() -> None:
    """The `hub-certify` console script: `hub certify` without loading every installed plugin."""
    certify(prog_name="hub-certify")
