"""The shipped profiles are valid, and the hub finds one vendor per profile through the entry point."""
from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hub.capabilities import CAPABILITIES
from hub.vendor import VendorAdapter

from hub_profiles import plugin
from hub_profiles.loader import builtin_dir
from hub_profiles.validate import load_file
from profiles_helpers import profiles_plugins

BUILTIN = sorted(p for p in builtin_dir().iterdir() if p.suffix in (".yaml", ".yml"))


def test_at_least_one_profile_per_driver_is_shipped() -> None:
    drivers = {load_file(p)[0].driver for p in BUILTIN}  # type: ignore[union-attr]
    assert drivers == {"mqtt", "modbus_tcp"}


@pytest.mark.parametrize("path", BUILTIN, ids=lambda p: p.name)
def test_every_builtin_profile_validates(path: Path) -> None:
    profile, errors = load_file(path)
    assert errors == []
    assert profile is not None and profile.name == path.stem  # file named after its vendor


def test_checker_accepts_the_builtin_profiles() -> None:
    exe = shutil.which("hub-profile-check", path=os.path.dirname(sys.executable))
    assert exe, "console script hub-profile-check is not installed"
    out = subprocess.run([exe, *map(str, BUILTIN)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count(": ok: ") == len(BUILTIN)


def test_entry_point_and_console_script_are_declared() -> None:
    eps = {ep.name: ep for ep in md.entry_points(group="hub.vendors")}
    assert eps["profiles"].value == "hub_profiles.plugin"
    assert eps["profiles"].dist is not None and eps["profiles"].dist.name == "hub-vendor-profiles"
    scripts = {ep.name: ep.value for ep in md.entry_points(group="console_scripts")}
    assert scripts["hub-profile-check"] == "hub_profiles.check:main"


def test_plugin_manager_yields_one_adapter_class_per_profile() -> None:
    plugins = profiles_plugins()
    vendors = plugins.vendors()
    assert {"tasmota_amp", "modbus_amp"} <= set(vendors)
    for name in ("tasmota_amp", "modbus_amp"):
        cls = vendors[name]
        assert issubclass(cls, VendorAdapter) and cls.manifest.name == name
        assert cls.manifest.capabilities <= CAPABILITIES.keys()
        assert cls.profile.name == name  # type: ignore[attr-defined]
    assert vendors["tasmota_amp"] is not vendors["modbus_amp"]
    assert vendors["tasmota_amp"].manifest.protocols == ("mqtt-3.1.1",)
    assert vendors["modbus_amp"].manifest.protocols == ("modbus-tcp",)
    described = {p["name"]: p for p in plugins.describe()}["profiles"]
    assert described["distribution"] == "hub-vendor-profiles"
    assert {"tasmota_amp", "modbus_amp"} <= {v["name"] for v in described["vendors"]}


def test_manifest_exports_the_site_config_schema() -> None:
    vendors = profiles_plugins().vendors()
    mqtt_cfg = vendors["tasmota_amp"].manifest.to_dict()["config_schema"]["properties"]
    assert mqtt_cfg["port"]["default"] == 1883 and "topic_prefix" in mqtt_cfg and "password" in mqtt_cfg
    modbus_cfg = vendors["modbus_amp"].manifest.to_dict()["config_schema"]["properties"]
    assert {"timeout_s", "retries", "poll_interval_s"} <= set(modbus_cfg)


def test_adapter_config_refuses_unknown_keys() -> None:
    vendors = profiles_plugins().vendors()
    with pytest.raises(ValueError, match="hots"):
        vendors["tasmota_amp"]({"hots": "x"})
    with pytest.raises(ValueError, match="topic_prefix"):
        vendors["tasmota_amp"]({"topic_prefix": "a/#"})
    with pytest.raises(ValueError, match="timeout"):
        vendors["modbus_amp"]({"timeout": 3})


def test_profiles_check_is_a_hub_subcommand() -> None:
    group = click.Group("hub")
    plugin.register_commands(cli=group)
    result = CliRunner().invoke(group, ["profiles", "check", *map(str, BUILTIN)])
    assert result.exit_code == 0, result.output
    listed = CliRunner().invoke(group, ["profiles", "list"])
    assert listed.exit_code == 0 and "tasmota_amp" in listed.output and "modbus_amp" in listed.output


def test_hub_command_line_runs_profiles_check(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad_one\ncolour: red\n", encoding="utf-8")
    exe = shutil.which("hub", path=os.path.dirname(sys.executable))
    assert exe
    env = {**os.environ, "HUB_PLUGINS": "profiles"}
    out = subprocess.run([exe, "profiles", "check", str(bad)], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"{bad}:2: profile: unknown key colour" in out.stdout
