"""Time to 99 % terminal under each fault: the fault drill's scenarios (tests/faults/drill.py)
at a larger size — real `hub worker` ×2 and `hub ingest`, the plugin's Fleet with one MQTT
connection per device, a Mosquitto of its own configured like production.conf — with every
delivery row's final state checked against what its device did. A figure is only meaningful
with its disagreements next to it: a fast 99 % made of rows that lie is no result."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from bench.common import loadavg, log


def run(workdir: Path, devices: int, db_url: str, label: str, reset: Any = None,
        scenarios: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    from tests.faults.drill import SCENARIOS, TTL_S
    from tests.faults.drill_scenarios import run_scenario

    out = []
    for name in scenarios or SCENARIOS:
        if reset is not None:
            reset()  # an empty schema for each scenario
        wd = workdir / f"faults-{name}-{label}-{devices}"
        wd.mkdir(parents=True, exist_ok=True)
        if label == "sqlite":
            db_url = f"sqlite:///{wd / 'hub.sqlite3'}"
        log(f"faults: {name}, {devices} devices, {label}")
        before = loadavg()
        report = run_scenario(name, wd, devices, TTL_S, db=(db_url, label))
        log(report.text())
        out.append({**report.as_dict(), "load_during": [before, loadavg()]})
        shutil.rmtree(wd, ignore_errors=True)
    return out


def rows(results: list[dict[str, Any]]) -> list[str]:
    """Markdown rows for the report's fault table."""
    lines = []
    for r in results:
        n_cmd = len(r["commands"])
        for i, c in enumerate(r["commands"]):
            wrong = sum(c["played_but_not_acked"].values())
            states = ", ".join(f"{k} {v}" for k, v in sorted(c["states"].items()))
            t99 = "never" if c["t99_terminal_s"] is None else f"{c['t99_terminal_s']} s"
            which = f" (command {i + 1} of {n_cmd})" if n_cmd > 1 else ""
            lines.append(
                f"| {r['scenario']}{which} | {r['db']}, N={r['devices']:,}, ttl {r['ttl_s']:g} s | {t99} | {states} "
                f"| {c['played']} | {wrong} not acked though played; {c['acked_not_played']} acked not played; "
                f"{c['missed']} missed; {c['repeats']} repeats (answered, not replayed); {c['played_twice']} played twice; {c['late']} late "
                f"| {'; '.join(r['notes']) if i == n_cmd - 1 else ''} | {r.get('load_during')} |")
    return lines
