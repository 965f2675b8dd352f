"""Certification runs of the other vendor plugins in this tree, on their own simulators.

Each is certified on every test run (in parallel, small timeouts, lenient mode) and must pass:
a finding fails this file with the list of requirements; the full reports are left in pytest's
tmp folder. The fault matrix of each — proof that the suite catches what its simulator imitates,
exactly, no more and no fewer — runs too (minutes, two vendors at a time; marked slow).

The targets say what each simulator needs that the suite cannot guess: addresses in the
vendor's format, a free port, test credentials, a poll interval that keeps up with the suite's
heartbeat interval, test media long enough for the vendor's timing, and the resolution of the
vendor's volume scale.
"""
from __future__ import annotations

import importlib.metadata as md
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from hub_conformance.proof import FaultMatrix, fast_params, run_fault_matrix, run_suite, write_target
from hub_conformance.runner import RunResult, usage_error

PARAMS = fast_params(heartbeat_interval_s=1.0)  # polled plugins poll at half this

TARGETS: dict[str, dict[str, Any] | None] = {
    "mqtt_speaker": None,  # implements conformance_setup: its own Mosquitto demanding credentials
    "serial_led": None,  # implements the conformance_setup hook
    "http_gateway": {
        # Plain http to loopback needs no allow_insecure_http (and setting it fails SEC-TLS-02).
        "config": {"base_url": "http://127.0.0.1:{free_port}/api", "api_key": "conformance-{run_id}",
                   "poll_interval_s": 0.5, "resync_interval_s": 0.5, "timeout_s": 2},
        "devices": [{"address": "IMEI{run_id}", "kind": "speaker"}],
        # PRIO-02 sends two bulletins while the emergency one plays: 2 s is too short for that
        # over a polled gateway.
        "media": {"short_audio_duration_s": 6},
        "parameters": {"level_step": 11.2},  # the gateway's volume is 1–10
    },
    "modbus_board": {
        "config": {"poll_interval_s": 0.5, "status_refresh_s": 1, "timeout_s": 0.5},
        "devices": [{"address": "127.0.0.1:{free_port}/1", "kind": "led_board"},
                    {"address": "127.0.0.1:{free_port}/2", "kind": "speaker"}],
        "parameters": {"level_step": 5, "led_text_max_bytes": 256},  # HR 10–137: a 256-byte text slot
    },
    "snapcast": None,  # implements the conformance_setup hook (a free port, the suite's relay URL mapped)
    # 0–31 is 3.2 hub units a step; +1 because the read-back is rounded again to the hub's integers.
    "modbus_amp": {"devices": [{"address": "127.0.0.1:{free_port}/1", "kind": "speaker"}],
                   "parameters": {"level_step": 4.3}},
    "tasmota_amp": {"parameters": {"level_step": 7.7}},  # 0–15: 6.7 a step, +1 likewise
}

# What a plugin's simulator genuinely cannot show (the run is then "incomplete" with
# exactly these unverified, never passed).
UNVERIFIABLE: dict[str, dict[str, str]] = {}

# Open findings, still to fix (each fails the run for that reason only).
OPEN_FINDINGS: dict[str, dict[str, str]] = {}


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
                        media=spec.get("media"), parameters=spec.get("parameters"))


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
    reasons = set(report.get("verdict_reasons") or [])
    summary = f"{vendor} is {report['verdict']} ({result.report_dir}/report.html): " + " | ".join(found)
    open_findings = OPEN_FINDINGS.get(vendor, {})
    if report["verdict"] == "fail" and reasons and reasons <= set(open_findings):
        pytest.xfail("open findings: " + "; ".join(f"{i}: {open_findings[i]}" for i in sorted(reasons)))
    allowed = set(UNVERIFIABLE.get(vendor, {}))
    assert report["verdict"] == "pass" or (report["verdict"] == "incomplete" and reasons <= allowed), summary


# Where a plugin's protocol catches a fault earlier than fault_map.yaml assumes, its expected
# failures differ, for a stated reason: an adapter that verifies what the device did before it
# reports an ack (read-back registers, an echoed text checksum) fails the command at once, so more
# requirements fail; one that refuses malformed or expired commands itself keeps those refusal
# checks passing even on a device that would accept anything.
ADJUSTED: dict[str, dict[str, dict[str, frozenset[str]]]] = {
    "http_gateway": {"acks_without_acting": {"drop": frozenset({"MAL-01"})}},  # refused before the gateway
    "modbus_board": {
        "misreports_volume": {"add": frozenset({"VOL-01"})},  # the read-back catches it at the ack
        # A frozen heartbeat counter means hung firmware: the adapter keeps the board offline and
        # reports none of its frozen registers, so every check that reads the status fails too.
        "no_heartbeat": {"add": frozenset({"LINK-01", "LINK-02", "TIME-01", "TIME-02", "STAT-01", "STAT-02",
                                           "STAT-04", "VOL-02"})},
        "mangles_diacritics": {"add": frozenset({"LED-01", "STAT-02"})},  # read-back text differs at the ack
        "acks_without_acting": {"drop": frozenset({"MAL-01"}), "add": frozenset({"ACK-01", "LINK-02"})},
        "silent": {"drop": frozenset({"ACK-02", "MAL-01", "MAL-02", "TIME-03"}), "add": frozenset({"LINK-01"})},
    },
    # The profile drivers refuse out-of-scale, unknown and expired commands themselves, and
    # verify the volume read back (Modbus register, Tasmota's echo) before they ack.
    "modbus_amp": {
        "misreports_volume": {"add": frozenset({"VOL-01", "ACK-01", "STAT-02", "LINK-02"})},
        "acks_without_acting": {"drop": frozenset({"MAL-01"}), "add": frozenset({"ACK-01", "LINK-02"})},
        "silent": {"drop": frozenset({"ACK-02", "MAL-01", "MAL-02", "TIME-03"}), "add": frozenset({"LINK-01"})},
    },
    "tasmota_amp": {
        "misreports_volume": {"add": frozenset({"VOL-01", "ACK-01", "STAT-02", "LINK-02"})},
        "acks_without_acting": {"drop": frozenset({"MAL-01"})},
        "silent": {"drop": frozenset({"ACK-02", "MAL-01", "MAL-02", "TIME-03"})},
    },
    "serial_led": {
        "mangles_diacritics": {"add": frozenset({"LED-01", "STAT-02"})},  # the echoed text checksum differs
        "acks_without_acting": {"drop": frozenset({"MAL-01"})},
        "silent": {"drop": frozenset({"ACK-02", "MAL-01", "MAL-02", "TIME-03"}), "add": frozenset({"LINK-01"})},
    },
}


def expected_for(vendor: str) -> dict[str, frozenset[str]]:
    from hub_conformance.proof import expected_failures

    table = dict(expected_failures())
    for mode, change in ADJUSTED.get(vendor, {}).items():
        table[mode] = (table[mode] - change.get("drop", frozenset())) | change.get("add", frozenset())
    return table


# mqtt_speaker's matrix runs in test_conformance_mqtt_speaker.py, with more assertions.
MATRIX_VENDORS = [v for v in VENDORS if v != "mqtt_speaker"]
# Slowest first, so that the longest runs start first: a silent Tasmota device makes each
# command wait out its 5 s echo three times.
SLOWEST_FIRST = ("tasmota_amp", "serial_led", "modbus_board", "modbus_amp", "http_gateway", "snapcast")
MATRIX_ORDER = sorted(MATRIX_VENDORS, key=lambda v: SLOWEST_FIRST.index(v) if v in SLOWEST_FIRST else -1)


def fault_matrix(vendor: str, folder: Path) -> FaultMatrix:
    target = _target(vendor, folder)
    spec = TARGETS[vendor] or {}
    if target is None:
        return run_fault_matrix(vendor, report_root=folder, params=PARAMS, mode="lenient",
                                expected=expected_for(vendor))
    return run_fault_matrix(vendor, spec.get("config"), devices=spec.get("devices"), report_root=folder,
                            params=PARAMS, mode="lenient", target=target, expected=expected_for(vendor))


# One test per vendor's matrix, each scheduled on its own (conftest.py at the root keeps
# every other module together): under `make test` the matrices run on several workers at once
# rather than one after another in this module's worker.
@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("vendor", MATRIX_ORDER)
def test_vendor_fault_matrix(vendor: str, tmp_path: Path, services: None) -> None:
    matrix = fault_matrix(vendor, tmp_path)
    print(matrix.table())
    assert matrix.ok, f"{vendor}: " + " | ".join(matrix.problems)
