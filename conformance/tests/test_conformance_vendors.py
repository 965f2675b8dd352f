"""Certification runs of the other vendor plugins in this tree, on their own simulators.

Each is certified on every test run (in parallel, small timeouts). Their findings belong to the
plugins' authors, who are still writing them, so a finding does not fail this file: it is
reported as an expected failure (xfail) with the list of requirements, and the full reports are
left in pytest's tmp folder. What does fail this file is the suite itself failing to run. The
fault matrix of each — proof that the suite catches what their simulators imitate — takes
minutes, so it runs only with HUB_CONFORMANCE_FULL=1.

The targets say what each simulator needs that the suite cannot guess: addresses in the
vendor's format, a free port, test credentials, a poll interval that keeps up with the suite's
heartbeat interval, and the resolution of the vendor's volume scale.
"""
from __future__ import annotations

import importlib.metadata as md
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from hub_conformance.proof import FAST_PARAMS, run_fault_matrix, run_suite, write_target
from hub_conformance.runner import RunResult, usage_error

PARAMS = {**FAST_PARAMS, "heartbeat_interval_s": 1.0}  # polled plugins poll at half this

TARGETS: dict[str, dict[str, Any] | None] = {
    "serial_led": None,  # implements the conformance_setup hook
    "http_gateway": {
        "config": {"base_url": "http://127.0.0.1:{free_port}/api", "api_key": "conformance-{run_id}",
                   "poll_interval_s": 0.5, "timeout_s": 2, "allow_insecure_http": True},
        "devices": [{"address": "IMEI{run_id}", "kind": "speaker"}],
        "parameters": {"level_step": 11.2},  # the gateway's volume is 1–10
    },
    "modbus_board": {
        "config": {"poll_interval_s": 0.5, "status_refresh_s": 1},
        "devices": [{"address": "127.0.0.1:{free_port}/1", "kind": "led_board"},
                    {"address": "127.0.0.1:{free_port}/2", "kind": "speaker"}],
        "parameters": {"level_step": 5},
    },
    "snapcast": {"config": {"control_port": "{free_port}", "poll_interval_s": 0.5}},
    "modbus_amp": {"devices": [{"address": "127.0.0.1:{free_port}/1", "kind": "speaker"}]},
    "tasmota_amp": None,
}


def installed_vendors() -> set[str]:
    from hub.plugins import Plugins

    found: set[str] = set()
    for ep in md.entry_points(group="hub.vendors"):
        p = Plugins()
        try:
            p.load_entry_points(only={ep.name})
            found |= set(p.vendors())
        except Exception:  # noqa: BLE001 - a plugin under construction may not import yet
            continue
    return found


VENDORS = sorted(set(TARGETS) & installed_vendors())


def _target(vendor: str, folder: Path) -> Path | None:
    spec = TARGETS[vendor]
    if spec is None:
        return None
    return write_target(folder / f"{vendor}-target.yaml", config=spec.get("config"), devices=spec.get("devices"),
                        parameters=spec.get("parameters"))


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory, services: None) -> dict[str, RunResult]:
    root = tmp_path_factory.mktemp("vendors")

    def one(vendor: str) -> RunResult:
        return run_suite(vendor, report_dir=root / vendor, target=_target(vendor, root), mode="lenient", params=PARAMS,
                         timeout=300)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(VENDORS, pool.map(one, VENDORS), strict=True))


def findings(report: dict[str, Any]) -> list[str]:
    out = []
    for q in report["requirements"]:
        if q["result"] in ("fail", "error", "skipped"):
            msg = (q.get("messages") or [""])[0]
            out.append(f"{q['id']} {q['result']}: {msg[:140]}")
    return out


@pytest.mark.skipif(not VENDORS, reason="none of the other vendor plugins is installed")
@pytest.mark.parametrize("vendor", VENDORS)
def test_vendor_plugin_is_certified(vendor: str, certified: dict[str, RunResult]) -> None:
    result = certified[vendor]
    assert result.report is not None, f"the suite did not run for {vendor}: {usage_error(result.output)}"
    report = result.report
    assert report["plugin"]["name"] == vendor
    assert all(q["result"] != "not_run" for q in report["requirements"])
    assert next(q for q in report["requirements"] if q["id"] == "PLUG-01")["result"] in ("pass", "fail")
    found = findings(report)
    if report["verdict"] != "pass":
        pytest.xfail(f"{vendor} is {report['verdict']} ({result.report_dir}/report.html): " + " | ".join(found))


@pytest.mark.skipif(os.environ.get("HUB_CONFORMANCE_FULL") != "1", reason="set HUB_CONFORMANCE_FULL=1 (minutes)")
@pytest.mark.parametrize("vendor", VENDORS)
def test_vendor_fault_matrix(vendor: str, tmp_path: Path, services: None) -> None:
    target = _target(vendor, tmp_path)
    spec = TARGETS[vendor] or {}
    matrix = run_fault_matrix(vendor, spec.get("config"), devices=spec.get("devices"), report_root=tmp_path,
                              params=PARAMS, mode="lenient") if target else \
        run_fault_matrix(vendor, report_root=tmp_path, params=PARAMS, mode="lenient")
    print(matrix.table())
    if not matrix.ok:
        pytest.xfail(f"{vendor}: " + " | ".join(matrix.problems))
