"""HUB_PROFILE_PATH: a province enables a device model by configuration alone, and a wrong
profile costs only itself."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hub_profiles.loader import load_profiles
from profiles_helpers import builtin_text, profiles_plugins, write_profile

NEW_MODEL = """\
name: province_relay
title: A relay the province added itself
version: "2024.1"
device_kinds: [speaker]
capabilities: [power.switch]
driver: mqtt
mqtt: {prefix: province}
commands:
  power:
    topic: "{prefix}/{address}/relay"
    payload: {on: "{params.on}", id: "{command_id}"}
    ack: {mode: reply, topic: "{prefix}/{address}/answer", id: id, ok: ok}
"""
BROKEN = """\
name: broken_amp
title: Broken
version: "1"
device_kinds: [speaker]
capabilities: [power.switch, audio.teleport]
driver: mqtt
commands: {}
"""


def check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("hub-profile-check", path=os.path.dirname(sys.executable))
    assert exe
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, env=env or dict(os.environ))


def test_a_profile_on_the_path_becomes_a_vendor(profile_dir: Path) -> None:
    write_profile(profile_dir, "province_relay.yaml", NEW_MODEL)
    vendors = profiles_plugins().vendors()
    assert "province_relay" in vendors
    cls = vendors["province_relay"]
    assert cls.manifest.version == "2024.1" and cls.manifest.capabilities == {"power.switch"}
    assert {"tasmota_amp", "modbus_amp"} <= set(vendors)  # built-ins stay


def test_several_directories_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    write_profile(first, "one.yaml", NEW_MODEL)
    write_profile(second, "two.yaml", NEW_MODEL.replace("province_relay", "second_relay"))
    monkeypatch.setenv("HUB_PROFILE_PATH", f"{first}{os.pathsep}{tmp_path / 'missing'}{os.pathsep}{second}")
    result = load_profiles()
    assert {"province_relay", "second_relay"} <= {p.name for p in result.profiles}
    assert [str(e) for e in result.errors] == [f"{tmp_path / 'missing'}: HUB_PROFILE_PATH: no such directory"]


def test_a_broken_profile_is_logged_and_skipped_not_fatal(profile_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_profile(profile_dir, "broken_amp.yaml", BROKEN)
    write_profile(profile_dir, "province_relay.yaml", NEW_MODEL)
    write_profile(profile_dir, "garbage.yaml", "name: [unclosed\n")
    with caplog.at_level(logging.ERROR, logger="hub_profiles"):
        vendors = profiles_plugins().vendors()
    assert "province_relay" in vendors and "tasmota_amp" in vendors and "modbus_amp" in vendors
    assert "broken_amp" not in vendors
    logged = caplog.text
    assert f"{profile_dir / 'broken_amp.yaml'}:5: capabilities: audio.teleport is not in the vocabulary" in logged
    assert f"{profile_dir / 'garbage.yaml'}:2: yaml: not valid YAML" in logged


def test_a_path_profile_may_replace_a_builtin(profile_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    adapted = builtin_text("tasmota_amp").replace("prefix: tasmota ", "prefix: dongthap ")
    path = write_profile(profile_dir, "tasmota_amp.yaml", adapted)
    with caplog.at_level(logging.WARNING, logger="hub_profiles"):
        cls = profiles_plugins().vendors()["tasmota_amp"]
    assert cls.profile.source == str(path) and cls.profile.settings.prefix == "dongthap"  # type: ignore[attr-defined]
    assert "replaces the built-in" in caplog.text


def test_two_path_profiles_with_one_name_keep_the_first(profile_dir: Path) -> None:
    write_profile(profile_dir, "a.yaml", NEW_MODEL)
    write_profile(profile_dir, "b.yaml", NEW_MODEL.replace("title: A relay", "title: Another relay"))
    result = load_profiles()
    [p] = [p for p in result.profiles if p.name == "province_relay"]
    assert p.source.endswith("a.yaml")
    assert [str(e) for e in result.errors] == [
        f"{profile_dir / 'b.yaml'}:1: name: province_relay is already the name of {profile_dir / 'a.yaml'}"]


def test_a_profile_cannot_take_an_installed_plugins_vendor_name(profile_dir: Path) -> None:
    write_profile(profile_dir, "x.yaml", NEW_MODEL.replace("province_relay", "mqtt_speaker"))
    result = load_profiles(taken={"mqtt_speaker": "hub-vendor-mqtt-speaker"})
    assert "mqtt_speaker" not in {p.name for p in result.profiles}
    assert [str(e) for e in result.errors] == [
        f"{profile_dir / 'x.yaml'}:1: name: mqtt_speaker is the vendor name of the installed plugin "
        "hub-vendor-mqtt-speaker"]


def test_checker_exit_status_and_messages(tmp_path: Path) -> None:
    good = write_profile(tmp_path, "province_relay.yaml", NEW_MODEL)
    bad = write_profile(tmp_path, "broken_amp.yaml", BROKEN)
    ok = check(str(good))
    assert ok.returncode == 0 and f"{good}: ok: province_relay (mqtt: power)" in ok.stdout
    out = check(str(good), str(bad))
    assert out.returncode == 1
    lines = out.stdout.strip().splitlines()
    assert f"{bad}:5: capabilities: audio.teleport is not in the vocabulary" in lines
    assert f"{bad}:7: commands: expected one entry per hub verb, such as power: or set_volume:" in lines
    quiet = check("-q", str(good), str(bad))
    assert quiet.returncode == 1 and ": ok: " not in quiet.stdout
    missing = check(str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "nope.yaml: (file): cannot read it" in missing.stdout


def test_checker_without_files_checks_what_the_hub_would_load(profile_dir: Path) -> None:
    write_profile(profile_dir, "province_relay.yaml", NEW_MODEL)
    out = check()
    assert out.returncode == 0, out.stdout
    assert "ok: province_relay" in out.stdout and "ok: tasmota_amp" in out.stdout
    write_profile(profile_dir, "broken_amp.yaml", BROKEN)
    out = check()
    assert out.returncode == 1 and "broken_amp.yaml:5: capabilities" in out.stdout
