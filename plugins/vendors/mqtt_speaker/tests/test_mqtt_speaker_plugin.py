"""Packaging and discovery: the hub finds the adapter through its entry point."""
from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys

import pytest

from hub.capabilities import CAPABILITIES
from hub.plugins import Plugins

from hub_mqtt_speaker.adapter import MqttSpeakerAdapter, MqttSpeakerConfigSchema


def test_entry_point_is_declared() -> None:
    eps = {ep.name: ep for ep in md.entry_points(group="hub.vendors")}
    assert "mqtt_speaker" in eps
    assert eps["mqtt_speaker"].value == "hub_mqtt_speaker.plugin"
    assert eps["mqtt_speaker"].dist is not None and eps["mqtt_speaker"].dist.name == "hub-vendor-mqtt-speaker"


def test_hub_plugin_manager_yields_the_adapter() -> None:
    plugins = Plugins()
    # Only ours: sibling plugins being built in the same tree must not break this test.
    plugins.load_entry_points(only={"mqtt_speaker"})
    assert plugins.vendors()["mqtt_speaker"] is MqttSpeakerAdapter
    described = plugins.describe()
    assert described[0]["distribution"] == "hub-vendor-mqtt-speaker"
    assert described[0]["vendors"][0]["name"] == "mqtt_speaker"


def test_manifest() -> None:
    m = MqttSpeakerAdapter.manifest
    assert m.name == "mqtt_speaker"
    assert m.version == md.version("hub-vendor-mqtt-speaker")
    assert m.protocols == ("mqtt-3.1.1",)
    assert set(m.device_kinds) == {"speaker", "led_board"}
    assert m.capabilities <= CAPABILITIES.keys()
    assert {"audio.play_url", "audio.stop", "audio.volume", "audio.stream_relay", "led.text", "led.text_unicode",
            "led.brightness", "power.switch", "status.heartbeat", "status.signal", "status.faults",
            "security.auth", "security.tls"} == set(m.capabilities)
    exported = m.to_dict()
    props = exported["config_schema"]["properties"]
    assert props["port"]["default"] == 1883
    assert "password" in props


def test_config_defaults_and_validation() -> None:
    settings = MqttSpeakerConfigSchema().load({})
    assert settings["host"] == "127.0.0.1" and settings["port"] == 1883
    assert settings["topic_prefix"] == "hub/mqtt_speaker"
    assert settings["client_id"].startswith("hub-")
    assert settings["client_id"] != MqttSpeakerConfigSchema().load({})["client_id"]
    assert settings["publish_timeout_s"] == 5 and settings["shared_group"] is None
    with pytest.raises(ValueError, match="hots"):
        MqttSpeakerAdapter({"hots": "x"})
    with pytest.raises(ValueError, match="topic_prefix"):
        MqttSpeakerAdapter({"topic_prefix": "hub/#"})
    with pytest.raises(ValueError, match="shared_group"):
        MqttSpeakerAdapter({"shared_group": "a/b"})


def test_simulator_does_not_need_the_hub() -> None:
    code = ("import sys; sys.modules['hub'] = None\n"  # any `import hub...` now fails
            "import hub_mqtt_speaker.simulator, hub_mqtt_speaker.simcli\n"
            "import hub_mqtt_speaker.protocol, hub_mqtt_speaker.device\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_health_before_open() -> None:
    health = MqttSpeakerAdapter({}).health()
    assert not health.ok and "not opened" in health.detail
