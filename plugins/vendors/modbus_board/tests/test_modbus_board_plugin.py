"""Packaging and discovery: the hub finds the adapter and the simulator through the entry point."""
from __future__ import annotations

import importlib.metadata as md
import os
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from hub.capabilities import CAPABILITIES
from hub.simulation import UnsupportedFault
from hub.vendor import Outcome, Outgoing

from hub_modbus_board.adapter import ModbusBoardAdapter, ModbusBoardConfigSchema
from modbus_board_helpers import VENDOR, VIETNAMESE, device, envelope, free_port, only_this_plugin, outgoing


def test_entry_point_is_declared() -> None:
    eps = {ep.name: ep for ep in md.entry_points(group="hub.vendors")}
    assert VENDOR in eps
    assert eps[VENDOR].value == "hub_modbus_board.plugin"
    assert eps[VENDOR].dist is not None and eps[VENDOR].dist.name == "hub-vendor-modbus-board"


def test_hub_plugin_manager_yields_adapter_and_simulator() -> None:
    plugins = only_this_plugin()
    assert plugins.vendors()[VENDOR] is ModbusBoardAdapter
    assert callable(plugins.simulators()[VENDOR])
    described = plugins.describe()
    assert described[0]["distribution"] == "hub-vendor-modbus-board"
    assert described[0]["vendors"][0]["name"] == VENDOR


def test_manifest() -> None:
    m = ModbusBoardAdapter.manifest
    assert m.version == md.version("hub-vendor-modbus-board")
    assert m.protocols == ("modbus-tcp",)
    assert set(m.device_kinds) == {"speaker", "led_board"}
    assert m.capabilities <= CAPABILITIES.keys()
    assert set(m.capabilities) == {"led.text", "led.text_unicode", "led.brightness", "audio.volume",
                                   "power.switch", "status.heartbeat", "status.faults"}
    props = m.to_dict()["config_schema"]["properties"]
    assert {"timeout_s", "retries", "poll_interval_s"} <= props.keys()


def test_config_defaults_and_validation() -> None:
    s = ModbusBoardConfigSchema().load({})
    assert s["timeout_s"] == 2.0 and s["retries"] == 0 and s["poll_interval_s"] == 10.0
    adapter = ModbusBoardAdapter({})
    assert adapter.ack_timeout_s == 2.0 and adapter.offline_after_s == 30.0
    # What the hub's Runtime hands over has been through the schema once already.
    assert ModbusBoardAdapter(ModbusBoardConfigSchema().load({"timeout_s": 1})).settings["timeout_s"] == 1.0
    with pytest.raises(ValueError, match="timout_s"):
        ModbusBoardAdapter({"timout_s": 1})
    with pytest.raises(ValueError, match="retries"):
        ModbusBoardAdapter({"retries": 3})  # the hub's retry policy governs, not pymodbus's
    with pytest.raises(ValueError, match="offline_after_s"):
        ModbusBoardAdapter({"poll_interval_s": 5, "offline_after_s": 5})


def test_health_before_and_after_use(make_adapter, make_sim) -> None:
    assert ModbusBoardAdapter({}).health().ok
    adapter = make_adapter()
    adapter.send([outgoing(f"127.0.0.1:{free_port()}/1", envelope("power", {"on": True}))])
    health = adapter.health()
    assert not health.ok and "connection refused" in health.detail
    sim = make_sim([1])
    adapter.send([outgoing(sim.address(1), envelope("power", {"on": True}))])
    assert adapter.health().ok and "1 of 2 endpoints answer" in adapter.health().detail


def test_simulator_side_does_not_need_the_hub() -> None:
    code = ("import sys; sys.modules['hub'] = None\n"  # any `import hub...` now fails
            "import hub_modbus_board.simulator, hub_modbus_board.board, hub_modbus_board.registers\n"
            "import hub_modbus_board.addressing, hub_modbus_board.client\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_simulator_hook_serves_the_endpoints_the_devices_name(make_adapter) -> None:
    factory = only_this_plugin().simulators()[VENDOR]
    p1, p2 = free_port(), free_port()
    devices = [device(f"127.0.0.1:{p1}/1"), device(f"127.0.0.1:{p1}/2", unicode=False),
               device(f"127.0.0.1:{p2}/7", kind="speaker")]
    fleet = factory({}, devices)
    fleet.start()
    try:
        adapter = make_adapter()
        env = envelope("led_show", {"text": VIETNAMESE})
        results = {r.device_id: r for r in adapter.send([outgoing(d.address, env, **d.config) for d in devices])}
        assert all(r.outcome is Outcome.ACKED for r in results.values()), results
        assert results[f"dev-127.0.0.1:{p1}/1"].detail["unicode"] is True
        assert results[f"dev-127.0.0.1:{p1}/2"].detail["unicode"] is False  # the factory made it ASCII-only
        assert fleet.sim(f"127.0.0.1:{p2}").unit(7).text == VIETNAMESE
    finally:
        fleet.stop()


def test_simulator_hook_imitates_the_hubs_fault_modes(make_adapter) -> None:
    factory = only_this_plugin().simulators()[VENDOR]
    port = free_port()
    liar, honest = device(f"127.0.0.1:{port}/1"), device(f"127.0.0.1:{port}/2")
    fleet = factory({}, [liar, honest], faults={liar.address: {"misreports_volume"}})
    fleet.start()
    try:
        env = envelope("set_volume", {"level": 40})
        results = {r.device_id: r for r in make_adapter().send([Outgoing(liar, env), Outgoing(honest, env)])}
        assert results[liar.id].outcome is Outcome.FAILED and "read-back volume" in results[liar.id].reason
        assert results[honest.id].outcome is Outcome.ACKED
    finally:
        fleet.stop()
    with pytest.raises(UnsupportedFault, match="ignores_emergency"):
        factory({}, [liar], faults={liar.address: {"ignores_emergency"}})
    with pytest.raises(UnsupportedFault, match="explodes"):
        factory({}, [liar], faults={liar.address: {"explodes"}})


def _script() -> str:
    path = Path(sysconfig.get_path("scripts")) / "hub-modbus-board-sim"
    return str(path) if path.exists() else str(Path(sys.executable).parent / "hub-modbus-board-sim")


def test_console_script_serves_until_sigterm(make_adapter) -> None:
    port = free_port()
    proc = subprocess.Popen([_script(), "--port", str(port), "--units", "1-2", "--ascii", "2",
                             "--fault", "2:wrong_volume"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in first, first + proc.stderr.read() if proc.poll() is not None else first
        assert proc.stdout.readline().strip() == f"127.0.0.1:{port}/1"
        adapter = make_adapter()
        results = {r.device_id: r for r in adapter.send([
            outgoing(f"127.0.0.1:{port}/1", envelope("set_volume", {"level": 50})),
            outgoing(f"127.0.0.1:{port}/2", envelope("set_volume", {"level": 50}))])}
        ok, wrong = results[f"dev-127.0.0.1:{port}/1"], results[f"dev-127.0.0.1:{port}/2"]
        assert ok.outcome is Outcome.ACKED and ok.detail["volume"] == 52
        assert wrong.outcome is Outcome.FAILED and "read-back volume" in wrong.reason
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_console_script_refuses_bad_switches() -> None:
    out = subprocess.run([_script(), "--port", "0", "--fault", "1:explode"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "explode" in out.stderr and "unresponsive" in out.stderr
