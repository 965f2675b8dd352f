"""Every door a device comes in by checks its address (finding 1): API PUT and PATCH (enabling a
row an older release stored), `hub import devices`, and the settings that say where devices may
be refuse what they cannot understand."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.api import create_app
from hub.access.actors import local_admin
from hub.config import ConfigError, load_settings
from hub.store.db import utcnow
from hub.store.models import Device
from hub.runtime import Runtime

pytest.importorskip("hub_serial_led")
ROOT = Path(__file__).resolve().parents[2]
BOARD = {"vendor": "serial_led", "kind": "led_board", "area_code": "27694"}


def test_put_refuses_a_bad_address_and_keeps_the_good_one(rt: Runtime, legacy_areas: None) -> None:
    client = create_app(rt, authenticator=local_admin).test_client()
    r = client.post("/api/devices", json={**BOARD, "id": "LED-1", "address": "/dev/ttyUSB0#1"})
    assert r.status_code == 201, r.get_json()
    r = client.put("/api/devices/LED-1", json={**BOARD, "address": "loop://#1"})
    assert r.status_code == 422 and "address" in r.get_json()["errors"]["json"], r.get_json()
    assert client.get("/api/devices/LED-1").get_json()["address"] == "/dev/ttyUSB0#1"


def test_enabling_a_planted_row_is_refused_naming_the_address(rt: Runtime, legacy_areas: None) -> None:
    with rt.db.session() as s:
        s.add(Device(id="LED-OLD", name="", vendor="serial_led", kind="led_board", area_code="27694",
                     address="spy:///dev/null?file=/tmp/x#1", capabilities=["led.text"], config={},
                     admin_state="disabled", created_at=utcnow()))
    client = create_app(rt, authenticator=local_admin).test_client()
    r = client.patch("/api/devices/LED-OLD", json={"admin_state": "enabled"})
    assert r.status_code == 422 and "address" in r.get_json()["errors"]["json"], r.get_json()
    assert client.patch("/api/devices/LED-OLD", json={"admin_state": "disabled"}).status_code == 200


def test_cli_import_refuses_with_one_line_naming_line_and_address(config_file: Path, tmp_path: Path) -> None:
    def hub(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "HUB_CONFIG": str(config_file)}, cwd=ROOT)

    assert hub("init-db").returncode == 0
    assert hub("import", "areas", str(ROOT / "tests/data/legacy-three-level.yaml")).returncode == 0
    csv = tmp_path / "devices.csv"
    csv.write_text("id,vendor,kind,area_code,address\n"
                   "LED-1,serial_led,led_board,27694,/dev/ttyUSB0#1\n"
                   "LED-2,serial_led,led_board,27694,socket://127.0.0.1:6379#8\n", encoding="utf-8")
    r = hub("import", "devices", str(csv))
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert ":3: address:" in lines[0] and "hub's own Redis" in lines[0], lines[0]
    assert "unknown device LED-1" in hub("send", "led_clear", "--device", "LED-1").stderr  # nothing half-done


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "gw.vendor.vn:0", "*:502", "10.0.0.1:80-70"])
def test_a_bad_device_networks_entry_names_the_key(tmp_path: Path, entry: str) -> None:
    cfg = tmp_path / "hub.yaml"
    cfg.write_text(f"device_networks: ['{entry}']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="device_networks"):
        load_settings({"HUB_CONFIG": str(cfg)})


def test_production_default_allows_no_network_device() -> None:
    s = load_settings({})
    assert s.device_networks == [] and all(p.startswith("/dev/") for p in s.device_serial_prefixes)
