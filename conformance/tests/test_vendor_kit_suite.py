"""The suite's diagnoses an outside vendor tripped over (issue 17, point 5), checked without a
certification run where the diagnosis is the suite's own logic."""
from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hub_conformance import quality
from hub_conformance.suite.check_priority import check_priority_ahead_of_normal


class _ReplacingDevice:
    """A stand-in for the device under test that has no priority handling: every play replaces
    what plays, so the normal bulletin sent during the emergency one cuts it off."""

    def __init__(self) -> None:
        self.target = SimpleNamespace(media=SimpleNamespace(short_audio_duration_s=8.0))
        self.tolerance = 1.25
        self.playing: dict[str, Any] = {"activity": "idle", "source": None}
        self.n = 0

    def limit(self, name: str) -> float:
        return 1.0

    def play(self, device: Any, priority: str, *, short: bool = False, wait: bool = True):  # noqa: ANN201
        self.n += 1
        content = {"id": f"c{self.n}", "uri": f"http://x/{self.n}", "duration_s": 8}
        self.playing = {"activity": "playing", "source": content["uri"]}
        return content, SimpleNamespace(command_id=f"cmd{self.n}", acked=True, state="acked", result=None,
                                        describe=lambda: "acked")

    def wait_observed(self, device, predicate, timeout, give_up=None):  # noqa: ANN001, ANN201
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self.playing):
                return True, dict(self.playing), "witness"
            if time.monotonic() >= deadline:
                return False, dict(self.playing), "witness"
            time.sleep(0.01)

    def refused(self, command_id: str, device: Any) -> bool:
        return False

    def answer(self, command_id: str, device: Any, t0: float):  # noqa: ANN201
        return SimpleNamespace(acked=True, describe=lambda: "acked")

    def expect_acked(self, answer: Any, what: str) -> None:
        assert answer.acked


def test_prio02_reports_fail_not_error_when_a_lower_class_play_replaced_the_emergency_one() -> None:
    with pytest.raises(AssertionError, match="cut off the emergency"):
        check_priority_ahead_of_normal(_ReplacingDevice(), SimpleNamespace(id="d", address="a"))


class _Manifest:
    config_schema = None


class _Adapter:
    manifest = _Manifest()


def test_an_exemption_of_a_rule_the_suite_checks_is_refused(tmp_path: Path) -> None:
    qf = tmp_path / "quality_scale.yaml"
    qf.write_text("rules:\n  fault-modes:\n    status: exempt\n    comment: we have no time\n", encoding="utf-8")
    facts = {"adapter_cls": _Adapter, "simulator_factory": object(), "distribution": None, "mode": "strict",
             "supported_faults": lambda: {"silent"}, "quality_file": qf}
    got = quality.evaluate(facts, {}, "strict")
    missing = got["tiers"]["silver"]["missing"]
    assert any("fault-modes" in m and "exempt" in m for m in missing), missing
    assert got["tiers"]["silver"]["rules"]["fault-modes"]["holds"] is False


def test_a_fault_the_simulator_cannot_imitate_means_the_suite_could_not_run(tmp_path: Path, services: None) -> None:
    import subprocess
    import sys

    bin_dir = Path(sys.executable).parent
    got = subprocess.run([str(bin_dir / "hub-certify"), "modbus_board", "--simulator", "--fault",
                          "accepts_unauthenticated", "-k", "heartbeat", "--report-dir", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert got.returncode == 2, (got.stdout, got.stderr)
    assert "cannot imitate accepts_unauthenticated" in got.stderr, got.stderr


def test_the_device_under_tests_ingest_starts_after_its_simulator(services: None) -> None:
    from hub.plugins import Plugins

    from hub_conformance import loading, params
    from hub_conformance.dut import DeviceUnderTest
    from hub_conformance.target import Media, Target, TargetDevice

    import order_vendor  # noqa: PLC0415 - conformance/tests is on sys.path (rootdir conftest)

    plugins = Plugins()
    plugins.register_module(order_vendor, "order_probe")
    loading.add_conformance_hookspecs(plugins)
    subject = loading.Subject("order_probe", plugins, order_vendor.OrderAdapter, None)
    target = Target(devices=[TargetDevice("860000000000001", "speaker", "spk-1")], media=Media.for_simulator())
    order_vendor.EVENTS.clear()
    dut = DeviceUnderTest(subject, target, params.resolve(True), "lenient", True, None, "ordertest")
    try:
        dut.start()
    finally:
        dut.stop()
    assert order_vendor.EVENTS.index("simulator.start") < order_vendor.EVENTS.index("adapter.open"), \
        order_vendor.EVENTS
