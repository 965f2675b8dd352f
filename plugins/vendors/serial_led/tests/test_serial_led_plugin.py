"""Packaging and discovery: the hub finds the adapter and the simulator through the entry point."""
from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys

import pytest

from hub.capabilities import CAPABILITIES, VERB_CAPABILITIES
from hub.plugins import Plugins

from hub_serial_led.adapter import SerialLedAdapter, SerialLedConfigSchema
from hub_serial_led.plugin import make_simulator


def test_entry_point_is_declared() -> None:
    eps = {ep.name: ep for ep in md.entry_points(group="hub.vendors")}
    assert "serial_led" in eps
    assert eps["serial_led"].value == "hub_serial_led.plugin"
    assert eps["serial_led"].dist is not None and eps["serial_led"].dist.name == "hub-vendor-serial-led"


def test_hub_plugin_manager_yields_adapter_and_simulator(plugins: Plugins) -> None:
    assert plugins.vendors()["serial_led"] is SerialLedAdapter
    assert plugins.simulators()["serial_led"] is make_simulator
    described = plugins.describe()
    assert described[0]["distribution"] == "hub-vendor-serial-led"
    assert described[0]["vendors"][0]["name"] == "serial_led"


def test_manifest() -> None:
    m = SerialLedAdapter.manifest
    assert m.name == "serial_led"
    assert m.version == md.version("hub-vendor-serial-led")
    assert m.device_kinds == ("led_board",)
    assert m.capabilities <= CAPABILITIES.keys()
    assert set(m.capabilities) == {"led.text", "led.text_unicode", "led.brightness", "power.switch",
                                   "status.heartbeat", "status.faults"}
    for verb in ("led_show", "led_clear", "set_brightness", "power"):
        assert VERB_CAPABILITIES[verb] <= m.capabilities
    props = m.to_dict()["config_schema"]["properties"]
    assert props["baudrate"]["default"] == 9600
    assert props["retries_per_frame"]["default"] == 0


def test_config_defaults_and_validation() -> None:
    s = SerialLedConfigSchema().load({})
    assert (s["baudrate"], s["timeout_s"], s["retries_per_frame"]) == (9600, 0.5, 0)
    assert s["inter_frame_gap_ms"] == 20 and s["keep_open"] is True
    assert SerialLedConfigSchema().load(s) == s  # the hub loads it, then the adapter loads it again
    with pytest.raises(ValueError, match="baudrat"):
        SerialLedAdapter({"baudrat": 9600})
    with pytest.raises(ValueError, match="timeout_s"):
        SerialLedAdapter({"timeout_s": 0})
    with pytest.raises(ValueError, match="poll_interval_s"):
        SerialLedAdapter({"poll_interval_s": 0.001})


def test_simulator_does_not_need_the_hub() -> None:
    code = ("import sys; sys.modules['hub'] = None\n"  # any `import hub...` now fails
            "import hub_serial_led.simulator, hub_serial_led.simcli, hub_serial_led.bus\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_health_before_use() -> None:
    adapter = SerialLedAdapter({})
    assert adapter.health().ok
    adapter.close()
