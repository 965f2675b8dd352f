"""Packaging and discovery: the hub finds the adapter and the simulator through the entry point."""
from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys

import pytest

from hub.capabilities import CAPABILITIES
from hub.plugins import Plugins
from hub.vendor import StatusParseError

from hub_snapcast.adapter import SnapcastAdapter
from hub_snapcast.config import SnapcastConfigSchema
from hub_snapcast.plugin import make_fleet


def test_entry_point_is_declared() -> None:
    eps = {ep.name: ep for ep in md.entry_points(group="hub.vendors")}
    assert "snapcast" in eps
    assert eps["snapcast"].value == "hub_snapcast.plugin"
    assert eps["snapcast"].dist is not None and eps["snapcast"].dist.name == "hub-vendor-snapcast"


def test_hub_plugin_manager_yields_the_adapter_and_the_simulator() -> None:
    plugins = Plugins()
    plugins.load_entry_points(only={"snapcast"})  # only ours: siblings in the tree cannot break this
    assert plugins.vendors()["snapcast"] is SnapcastAdapter
    assert plugins.simulators()["snapcast"] is make_fleet
    described = plugins.describe()
    assert described[0]["distribution"] == "hub-vendor-snapcast"
    assert described[0]["vendors"][0]["name"] == "snapcast"


def test_manifest() -> None:
    m = SnapcastAdapter.manifest
    assert m.name == "snapcast" and m.version == md.version("hub-vendor-snapcast")
    assert m.device_kinds == ("speaker",)
    assert m.capabilities <= CAPABILITIES.keys()
    # play never fetches a URL, so audio.play_url is not claimed.
    assert set(m.capabilities) == {"audio.stream_relay", "audio.volume", "audio.stop", "status.heartbeat"}
    props = m.to_dict()["config_schema"]["properties"]
    assert props["control_port"]["default"] == 1705 and props["host"]["default"] == "127.0.0.1"
    assert {"timeout_s", "streams", "relay_streams", "poll_interval_s"} <= set(props)


def test_config_defaults_and_validation() -> None:
    s = SnapcastConfigSchema().load({})
    assert (s["host"], s["control_port"]) == ("127.0.0.1", 1705)
    assert s["streams"] == {"bulletin": "bulletin", "idle": "default"} and s["relay_streams"] == {}
    assert SnapcastConfigSchema().load(s) == s  # the hub loads it, then the adapter loads it again
    with pytest.raises(ValueError, match="contorl_port"):
        SnapcastAdapter({"contorl_port": 1})
    with pytest.raises(ValueError, match="idle"):
        SnapcastAdapter({"streams": {"bulletin": "b"}})
    with pytest.raises(ValueError, match="relay_streams"):
        SnapcastAdapter({"relay_streams": {"vov1": "vov1"}})


def test_health_before_open_and_no_async_acks() -> None:
    adapter = SnapcastAdapter({})
    health = adapter.health()
    assert not health.ok and "not opened" in health.detail
    with pytest.raises(StatusParseError, match="no asynchronous acks"):
        adapter.parse_ack("spk-a", b"{}")


def test_lab_and_protocol_do_not_need_the_hub() -> None:
    code = ("import sys; sys.modules['hub'] = None\n"  # any `import hub...` now fails
            "import hub_snapcast.rpc, hub_snapcast.state, hub_snapcast.lab, hub_snapcast.simulator\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
