"""The fault drill: an operator's bad day on real processes, one scenario per test —
a worker killed (-9) mid fan-out, the ingest killed (-9) mid fan-out and restarted, the broker
restarted mid fan-out, three commands to the same slot while a worker restarts (a short database
stall pins each kill inside a batch, or between the ingest hearing acks and storing them) — then every
delivery row's final state checked against what each simulated device received and did
(tests/faults/drill.py). Run one with `-k`, e.g.

    .venv/bin/python -m pytest tests/faults/test_fault_drill.py -s -k broker_restart

`-s` shows each scenario's counts. HUB_DRILL_DEVICES (300) and HUB_DRILL_TTL_S (40) change
its size and the commands' time to live."""
from __future__ import annotations

import shutil

import pytest

from tests.faults.drill import SCENARIOS, TTL_S
from tests.faults.drill_scenarios import run_scenario

pytestmark = [pytest.mark.slow, pytest.mark.timeout(int(TTL_S) + 180)]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_fault_drill(scenario: str, tmp_path) -> None:
    for binary in ("mosquitto", "redis-server"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed")
    pytest.importorskip("hub_mqtt_speaker")
    report = run_scenario(scenario, tmp_path)
    print("\n" + report.text())
    problems = report.problems()
    assert not problems, f"{report.text()}\n" + "\n".join(problems)
