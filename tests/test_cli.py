"""The `hub` command: bad input gets one line naming the problem, nothing half-done."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import hub, one_line_error
from tests.support.services import ROOT


@pytest.fixture
def ready(config_file: Path, tmp_path: Path) -> Path:
    assert hub(config_file, "init-db").returncode == 0
    r = hub(config_file, "import", "areas", str(ROOT / "tests/data/legacy-three-level.yaml"))
    assert r.returncode == 0, r.stderr
    return config_file


def test_import_devices_then_send_and_list_deliveries(ready: Path, tmp_path: Path) -> None:
    csv = tmp_path / "devices.csv"
    csv.write_text("id,vendor,kind,area_code,address,tags\n"
                   "SPK-1,mqtt_speaker,speaker,27694,spk-1,market;school\n"
                   "LED-1,mqtt_speaker,led_board,27694,led-1,\n", encoding="utf-8")
    r = hub(ready, "import", "devices", str(csv))
    assert r.returncode == 0 and "imported 2 devices" in r.stdout, r.stderr
    r = hub(ready, "send", "stop", "--area", "794")
    assert r.returncode == 0, r.stderr
    assert "2 devices" in r.stdout and "queued 1" in r.stdout and "unsupported 1" in r.stdout
    cid = r.stdout.split()[1]
    rows = [json.loads(line) for line in hub(ready, "deliveries", cid, "--json").stdout.splitlines()]
    assert {(x["device_id"], x["state"]) for x in rows} == {("SPK-1", "queued"), ("LED-1", "unsupported")}


def test_send_to_a_polygon_reaches_the_devices_inside_it(ready: Path, tmp_path: Path) -> None:
    csv = tmp_path / "devices.csv"
    csv.write_text("id,vendor,kind,area_code,address,latitude,longitude\n"
                   "SPK-IN,mqtt_speaker,speaker,27694,spk-in,10.534,106.41\n"
                   "SPK-OUT,mqtt_speaker,speaker,27694,spk-out,10.543,106.42\n"
                   "SPK-NONE,mqtt_speaker,speaker,27694,spk-none,,\n", encoding="utf-8")
    assert hub(ready, "import", "devices", str(csv)).returncode == 0
    r = hub(ready, "send", "stop", "--polygon", "10.530,106.405 10.530,106.425 10.545,106.405")
    assert r.returncode == 0 and "1 devices" in r.stdout, r.stdout + r.stderr
    assert "1 devices" in hub(ready, "send", "stop", "--area", "27694", "--circle", "10.535,106.413,0.5").stdout
    line = one_line_error(hub(ready, "send", "stop", "--polygon", "106.405,10.53 106.425,10.53 106.405,10.545"))
    assert "target.geometry.polygons.0:" in line and "swapped" in line
    assert "--circle" in one_line_error(hub(ready, "send", "stop", "--circle", "here,106.4,1"))


@pytest.mark.parametrize("args, expected", [
    (["send", "set_volume", "--area", "27694", "--param", "level=150"], "params.level"),
    (["send", "explode", "--area", "27694"], "verb"),
    (["send", "stop"], "target"),
    (["send", "stop", "--area", "99999"], "target.areas: unknown area code 99999"),
    (["send", "play", "--area", "27694"], "content_id"),
    (["deliveries", "0123"], "no command 0123"),
    (["import", "areas"], "give either a FILE or --official"),
])
def test_bad_input_is_one_line_naming_the_problem(ready: Path, args: list[str], expected: str) -> None:
    assert expected in one_line_error(hub(ready, *args))


def test_a_bad_device_file_names_the_line_and_field_and_imports_nothing(ready: Path, tmp_path: Path) -> None:
    csv = tmp_path / "devices.csv"
    csv.write_text("id,vendor,kind,area_code,address\n"
                   "SPK-1,mqtt_speaker,speaker,27694,spk-1\n"
                   "SPK-2,mqtt_speaker,toaster,27694,spk-2\n", encoding="utf-8")
    line = one_line_error(hub(ready, "import", "devices", str(csv)))
    assert ":3: kind:" in line
    r = hub(ready, "send", "stop", "--device", "SPK-1")
    assert "unknown device SPK-1" in one_line_error(r)


def test_an_uninitialised_database_says_so(config_file: Path) -> None:
    assert "hub init-db" in one_line_error(hub(config_file, "send", "stop", "--area", "80"))


def test_a_missing_config_file_says_so(tmp_path: Path) -> None:
    assert "no such file" in one_line_error(hub(tmp_path / "nope.yaml", "init-db"))


def test_plugins_lists_the_mqtt_speaker_with_its_capabilities(config_file: Path) -> None:
    r = hub(config_file, "plugins", "--json")
    assert r.returncode == 0, r.stderr
    vendors = {v["name"]: v for p in json.loads(r.stdout) for v in p.get("vendors", [])}
    assert "audio.play_url" in vendors["mqtt_speaker"]["capabilities"]


def test_hub_plugins_env_restricts_loading(config_file: Path) -> None:
    r = hub(config_file, "plugins", "--json", env={"HUB_PLUGINS": ""})
    assert [p for p in json.loads(r.stdout) if p["group"] != "hub.tools"] == []  # tools stay available


def test_schemas_check_passes_on_the_checked_in_files(config_file: Path) -> None:
    r = hub(config_file, "schemas", "export", "--check")
    assert r.returncode == 0 and "current" in r.stdout


def test_hub_plugins_lists_the_five_vendor_protocols_with_capabilities(config_file: Path) -> None:
    r = hub(config_file, "plugins")
    assert r.returncode == 0, r.stderr
    for vendor in ("mqtt_speaker", "http_gateway", "snapcast", "modbus_board", "serial_led"):
        line = next((ln for ln in r.stdout.splitlines() if ln.strip().startswith(f"vendor {vendor}:")), None)
        assert line is not None, f"{vendor} missing from `hub plugins`:\n{r.stdout}"
        caps = r.stdout.split(line, 1)[1].splitlines()[1]
        assert caps.strip().startswith("capabilities: ") and len(caps.split(",")) >= 4
