"""The batch gateway test plugin certifies with no command-line parameters (issue 17, "Done
when"): every applicable requirement passes through the hub — PRIO-01/02/04 by the hub's own
arbitration, acks by status read-back — and each of its own fault modes fails exactly the
requirement IDs it declares."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hub_conformance.proof import run_fault_matrix

BIN = Path(sys.executable).parent


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_certifies_with_no_command_line_parameters(batch_gateway_installed: str, tmp_path: Path,
                                                   services: None) -> None:
    out = tmp_path / "report"
    got = subprocess.run([str(BIN / "hub-certify"), batch_gateway_installed, "--simulator", "--lenient",
                          "--report-dir", str(out)], capture_output=True, text=True, timeout=880, cwd=tmp_path)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    results = {q["id"]: q["result"] for q in report["requirements"]}
    bad = {i: r for i, r in results.items() if r not in ("pass", "not_applicable")}
    assert not bad, (bad, got.stdout)
    assert got.returncode == 0, got.stdout + got.stderr
    for rid in ("PRIO-01", "PRIO-02", "PRIO-04", "PLAY-01", "STOP-01", "VOL-01", "VOL-02", "ACK-01", "PARSE-01"):
        assert results[rid] == "pass", rid
    # the volume step came from the manifest's declared 1–15 scale, not from --param
    assert report["parameters"]["level_step"]["origin"] == "plugin manifest"


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_its_own_fault_modes_fail_exactly_their_declared_requirements(batch_gateway_installed: str,
                                                                      tmp_path: Path, services: None) -> None:
    matrix = run_fault_matrix(batch_gateway_installed, report_root=tmp_path, mode="lenient", jobs=2,
                              modes=["missing_from_list", "gateway_5xx", "ignores_stop"])
    matrix.assert_ok()
    assert {m for m, o in matrix.modes.items() if o.supported} == {"missing_from_list", "gateway_5xx",
                                                                     "ignores_stop"}
