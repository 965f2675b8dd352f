"""Proof that the suite fails: the reference plugin's simulator with each fault mode switched on
must fail exactly the requirements fault_map.yaml names, and the clean simulator everything
that applies. One fault matrix (runs in parallel) serves all assertions."""
from __future__ import annotations

from pathlib import Path

import pytest

from hub_conformance.proof import FaultMatrix, expected_failures, run_fault_matrix

pytest.importorskip("hub_mqtt_speaker")

# The simulated boards have no volume, so the board is certified with the capabilities it has;
# without this, hub/fleet/registry.py's narrowing by kind would give it audio.volume (see STAT-01).
BOARD_CAPABILITIES = ["led.text", "led.text_unicode", "led.brightness", "power.switch", "status.heartbeat",
                      "status.signal", "status.faults", "security.auth", "security.tls"]
DEVICES = [{"address": "SPK-{run_id}", "kind": "speaker"},
           {"address": "LED-{run_id}", "kind": "led_board", "capabilities": BOARD_CAPABILITIES}]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory, services: None) -> FaultMatrix:
    root: Path = tmp_path_factory.mktemp("mqtt-matrix")
    return run_fault_matrix("mqtt_speaker", {"topic_prefix": "hubconf/{run_id}"}, devices=DEVICES, report_root=root)


def test_suite_catches_exactly_each_fault(matrix: FaultMatrix) -> None:
    print(matrix.table())
    matrix.assert_ok()


def test_every_mode_is_imitated_and_proven(matrix: FaultMatrix) -> None:
    # accepts_unauthenticated: the run's own broker (conformance_setup) is opened to anyone.
    assert matrix.unsupported == set()
    for mode, outcome in matrix.modes.items():
        if outcome.supported:
            assert outcome.expected == set(expected_failures()[mode]) & matrix.applicable
            assert outcome.expected, f"{mode} proves nothing"


def test_clean_simulator_passes_everything_applicable(matrix: FaultMatrix) -> None:
    report = matrix.clean.report
    results = {q["id"]: q for q in report["requirements"]}
    assert not [i for i, q in results.items() if q["result"] in ("fail", "error")]
    assert results["SEC-AUTH-01"]["result"] == "pass"  # the run's broker demands credentials
    # What cannot be shown on a plain loopback broker is said, never passed.
    assert results["SEC-TLS-01"]["result"] == "skipped"
    assert results["PRIO-03"]["result"] == "not_applicable"  # no audio.local_schedule declared
    assert report["target"]["witness"] == "simulator" and report["target"]["link_control"] == "simulator"
    assert report["verdict_reasons"] == ["SEC-TLS-01"]
    assert report["verdict"] == "incomplete"


def test_fault_runs_report_what_was_injected(matrix: FaultMatrix) -> None:
    o = matrix.modes["mangles_diacritics"]
    injected = o.report["target"]["faults"]
    assert injected and all(m == ["mangles_diacritics"] for m in injected.values())
    led = next(q for q in o.report["requirements"] if q["id"] == "LED-02")
    assert "diacritics" not in led["messages"][0] or "intact" in led["messages"][0]
    assert "first difference" in led["messages"][0]
    vol = next(q for q in matrix.modes["misreports_volume"].report["requirements"] if q["id"] == "VOL-02")
    assert "reads back" in vol["messages"][0]
