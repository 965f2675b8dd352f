"""`hub certify` and `hub-certify` as a vendor runs them: a summary on stdout, three reports."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.testing import scaled, time_scale

pytest.importorskip("hub_mqtt_speaker")
BIN = Path(sys.executable).parent


def run(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HUB_PLUGINS"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)


def test_hub_certify_writes_three_reports_and_a_summary(tmp_path: Path, services: None) -> None:
    out = tmp_path / "cert"
    # The plugin-registered command (entry point group hub.tools → register_commands).
    # On a loaded machine (HUB_TEST_TIME_SCALE) the simulator's limits are stretched as the
    # suite's other simulator runs are (hub_conformance.proof.fast_params).
    stretch = [] if time_scale() == 1 else ["--ack-timeout", f"{scaled(2.0):g}", "--status-timeout", f"{scaled(2.0):g}"]
    got = run([str(BIN / "hub"), "certify", "mqtt_speaker", "--simulator", "--report-dir", str(out), *stretch,
               "-k", "manifest or check_play or vietnamese or read_back"], tmp_path)
    assert got.returncode == 3, got.stdout + got.stderr  # incomplete: only four checks selected
    assert "mqtt_speaker 0.1.0: INCOMPLETE" in got.stdout and "reports:" in got.stdout
    for name in ("report.json", "report.html", "junit.xml"):
        assert (out / name).stat().st_size > 500, name
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    results = {q["id"]: q["result"] for q in report["requirements"]}
    assert results["PLUG-01"] == results["PLAY-01"] == results["LED-02"] == results["VOL-02"] == "pass"
    assert results["HB-01"] == "not_run"
    assert report["parameters"]["heartbeat_interval_s"]["chosen_by"] == "hub"
    assert report["plugin"]["distribution"] == "hub-vendor-mqtt-speaker"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Circular 39/2020" in html or "Thông tư 39/2020" in html
    assert 'property name="requirement" value="PLUG-01"' in (out / "junit.xml").read_text(encoding="utf-8")


def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    got = run([str(BIN / "hub-certify"), "no_such_vendor", "--simulator", "--report-dir", str(tmp_path / "r")],
              tmp_path)
    assert got.returncode == 2
    assert "no installed plugin provides the vendor 'no_such_vendor'" in got.stderr
    got = run([str(BIN / "hub-certify"), "mqtt_speaker"], tmp_path)
    assert got.returncode == 2 and "--simulator" in got.stderr
    got = run([str(BIN / "hub-certify"), "mqtt_speaker", "--simulator", "--param", "nope=1"], tmp_path)
    assert got.returncode == 2 and "unknown parameter" in got.stderr
