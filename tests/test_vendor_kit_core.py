"""Core bugs an outside vendor met while writing a plugin from the guide (issue 17, point 6)."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import yaml

from hub.api import create_app
from hub.access.actors import local_admin
from hub.store.db import utcnow
from hub.delivery.ingest import Ingest
from hub.store.models import DeviceStatus
from hub.fleet.registry import _KIND_PREFIXES, upsert_device
from hub.testing import wait_until
from tests.vendor_kit import unreachable_vendor

ROOT = Path(__file__).resolve().parents[1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hub_cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HUB_CONFIG": str(config)}, cwd=ROOT)


# -- hub ingest when a vendor's link is down at start-up ---------------------------------------------
def test_ingest_process_keeps_running_when_a_vendors_open_raises_transient_error(config_file: Path) -> None:
    cfg = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    cfg["plugins"]["mqtt_speaker"]["port"] = _closed_port()  # the broker is down: open() raises TransientError
    config_file.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    assert hub_cli(config_file, "init-db").returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "ingest"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env={**os.environ, "HUB_CONFIG": str(config_file), "HUB_PLUGINS": "mqtt_speaker"})
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "ingest running" in line:
                break
        assert any("ingest running" in ln for ln in lines), "".join(lines)
        assert any("retrying" in ln and "mqtt_speaker" in ln for ln in lines), "".join(lines)
        time.sleep(1)
        assert proc.poll() is None, "hub ingest exited"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_ingest_retries_a_vendor_that_was_down_with_backoff_while_the_others_work(hub) -> None:  # noqa: ANN001
    hub.plugins.register_module(unreachable_vendor, "unreachable")
    unreachable_vendor.ATTEMPTS.clear()
    ing = Ingest(hub, vendors=["loopback", "unreachable"])
    ing.retry_backoff_s = (1.0, 10.0)
    ing.start()  # must not raise
    try:
        assert "loopback" in ing.adapters  # the other vendor works from the start
        assert wait_until(lambda: "unreachable" in ing.adapters, 30), unreachable_vendor.ATTEMPTS
        a = unreachable_vendor.ATTEMPTS
        assert len(a) == 3
        assert a[1] - a[0] >= 0.9 and a[2] - a[1] >= 1.9, a  # the wait doubles: backoff, not a busy loop
    finally:
        ing.stop()


# -- one truth about being online ---------------------------------------------------------------------
def test_status_api_says_offline_once_the_heartbeat_timeout_took_the_device_offline(rt, legacy_areas) -> None:  # noqa: ANN001
    rt.settings.heartbeat_timeout_s = 5
    with rt.db.session() as s:
        upsert_device(s, rt.plugins, {"id": "SPK-HB", "vendor": "mqtt_speaker", "kind": "speaker",
                                      "area_code": "27694", "address": "spk-hb", "tags": []})
        s.flush()
        old = utcnow() - timedelta(seconds=60)
        s.add(DeviceStatus(device_id="SPK-HB", online=True, activity="idle", faults=[], reported_at=old,
                           last_seen_at=old, operating_state="online", consecutive_failures=0))
    Ingest(rt, vendors=[]).sweep()
    client = create_app(rt, authenticator=local_admin).test_client()
    body = client.get("/api/devices/SPK-HB/status").get_json()
    assert body["operating_state"] == "offline"
    assert body["online"] is False, body
    listed = client.get("/api/devices?online=true").get_json()
    assert "SPK-HB" not in [d["id"] for d in listed]
    row = next(d for d in client.get("/api/devices").get_json() if d["id"] == "SPK-HB")
    assert row["status"]["online"] is False


# -- the CLI can do what `hub send play` needs -------------------------------------------------------
def test_cli_creates_a_content_that_send_play_then_uses(config_file: Path) -> None:
    assert hub_cli(config_file, "init-db").returncode == 0
    assert hub_cli(config_file, "import", "areas", str(ROOT / "tests/data/legacy-three-level.yaml")).returncode == 0
    # --publish: only a published content is played (the editorial workflow, test_content_workflow.py)
    r = hub_cli(config_file, "contents", "add", "--title", "Bản tin sáng", "--kind", "audio_file",
                "--uri", "http://127.0.0.1:8/news.mp3", "--duration", "60", "--priority", "priority", "--publish")
    assert r.returncode == 0, r.stderr
    cid = re.search(r"content ([0-9a-f]{32})", r.stdout).group(1)
    r = hub_cli(config_file, "contents", "list", "--json")
    row = next(json.loads(ln) for ln in r.stdout.splitlines() if json.loads(ln)["id"] == cid)
    assert row["title"] == "Bản tin sáng" and row["media"]["uri"] == "http://127.0.0.1:8/news.mp3"
    devices = config_file.parent / "d.csv"
    devices.write_text("id,vendor,kind,area_code,address\nSPK-1,mqtt_speaker,speaker,27694,spk-1\n", encoding="utf-8")
    assert hub_cli(config_file, "import", "devices", str(devices)).returncode == 0
    r = hub_cli(config_file, "send", "play", "--device", "SPK-1", "--content", cid)
    assert r.returncode == 0 and "queued 1" in r.stdout, r.stderr


def test_cli_contents_add_names_what_is_missing(config_file: Path) -> None:
    assert hub_cli(config_file, "init-db").returncode == 0
    r = hub_cli(config_file, "contents", "add", "--title", "x", "--kind", "audio_file")
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and "media" in lines[0], r.stderr


def test_cli_deliveries_shows_the_read_back_result(config_file: Path) -> None:
    from hub.config import load_settings
    from hub.store.models import Command, Delivery
    from hub.runtime import Runtime

    assert hub_cli(config_file, "init-db").returncode == 0
    assert hub_cli(config_file, "import", "areas", str(ROOT / "tests/data/legacy-three-level.yaml")).returncode == 0
    devices = config_file.parent / "d.csv"
    devices.write_text("id,vendor,kind,area_code,address\nSPK-1,mqtt_speaker,speaker,27694,spk-1\n", encoding="utf-8")
    assert hub_cli(config_file, "import", "devices", str(devices)).returncode == 0
    r = hub_cli(config_file, "send", "set_volume", "--device", "SPK-1", "--param", "level=60")
    cid = r.stdout.split()[1]
    rt = Runtime(load_settings({"HUB_CONFIG": str(config_file)}))
    try:
        with rt.db.session() as s:
            d = s.query(Delivery).filter_by(command_id=cid).one()
            d.state, d.result = "acked", {"volume": 60}
            assert s.get(Command, cid) is not None
    finally:
        rt.close()
    rows = [json.loads(ln) for ln in hub_cli(config_file, "deliveries", cid, "--json").stdout.splitlines()]
    assert rows[0]["result"] == {"volume": 60}
    text = hub_cli(config_file, "deliveries", cid).stdout
    assert '"volume": 60' in text or "volume=60" in text, text


# -- the guide and the registry agree on what a board keeps --------------------------------------------
def test_the_guide_states_the_capabilities_a_board_keeps_as_the_registry_gives_them() -> None:
    guide = (ROOT / "docs/writing-a-plugin.md").read_text(encoding="utf-8")
    m = re.search(r"A board keeps (.+?)\.\s", guide.replace("\n", " "))
    assert m, "the guide no longer says what a board keeps"
    said = set(re.findall(r"`([a-z_]+\.(?:\*|[a-z_]+))`", m.group(1)))
    given = {p + "*" for p in _KIND_PREFIXES["led_board"]}
    assert said == given, f"guide says {sorted(said)}, the registry gives {sorted(given)}"
