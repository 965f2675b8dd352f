"""Done when: the one-step emergency reaches every targeted device of a mixed-vendor area.

A commune operator fires one emergency by text at their commune, whose devices speak four
protocols (MQTT speakers and a board, an HTTP vendor gateway, a Modbus TCP controller, RS-485
boards), with real Mosquitto, an rq worker and the ingest. Every targeted device ends in a terminal
state: acked where the device confirmed, and the three that cannot receive it — offline, disabled,
a Modbus amplifier that cannot play audio — expired, failed and unsupported with a reason, as
the answer named them beforehand. The answer's counts match the rows; the MQTT speakers fetched the
Vietnamese audio by signed URL (the gateway's speakers were given the same URL); the boards show
the text byte-correct; the audit trail holds one `emergency.fire` entry naming the operator; a
speaker of another commune heard nothing.
"""
from __future__ import annotations

import secrets
import shutil
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from hub.api import create_app
from hub.delivery.ingest import Ingest
from hub.delivery.jobs import device_ref
from hub.delivery.worker import make_worker
from hub.devkit.embedded import free_port
from hub.fleet.registry import upsert_device
from hub.runtime import Runtime, set_runtime
from hub.store.db import utcnow
from hub.store.models import AuditEntry, Content, Delivery, Device, DeviceStatus
from hub.testing import scaled
from tests.support.media import serve
from tests.support.processes import wait_until
from tests.support.province import probe
from tests.support.services import MQTT_HOST, MQTT_PORT

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("ffmpeg")),
                                                   reason="espeak-ng and ffmpeg are needed")]
for _module in ("hub_mqtt_speaker", "hub_http_gateway", "hub_modbus_board", "hub_serial_led", "hub_espeak_ng"):
    pytest.importorskip(_module)
from hub_mqtt_speaker.device import SimDevice  # noqa: E402 - after the skips
from hub_mqtt_speaker.simulator import Fleet  # noqa: E402

COMMUNE, VILLAGE, ELSEWHERE = "28099", "28099-A1", "27694"
TEXT = "Thông báo khẩn: bão số 3 đổ bộ lúc 7 giờ 30. Bà con vào nơi trú ẩn ngay."
SIMULATED = ("http_gateway", "modbus_board", "serial_led")
TARGETED = {"MQ-SPK-1", "MQ-SPK-2", "MQ-LED-1", "MQ-SPK-OFF", "MQ-SPK-DIS", "GW-SPK-1", "GW-SPK-2", "MB-AMP-1",
            "MB-LED-1", "RS-LED-1"}


@pytest.fixture
def fleet(rt: Runtime, legacy_areas: None, mqtt_prefix: str) -> Iterator[dict[str, Any]]:
    modbus, serial = free_port(), free_port()
    rt.settings.device_networks = ["127.0.0.1"]  # the simulators' loopback ports (hub.addresses)
    rt.settings.plugins.update({
        "mqtt_speaker": {"host": MQTT_HOST, "port": MQTT_PORT, "topic_prefix": mqtt_prefix},
        "http_gateway": {"base_url": f"http://127.0.0.1:{free_port()}", "api_key": secrets.token_urlsafe(24)},
        "modbus_board": {"timeout_s": 1.0}, "serial_led": {"timeout_s": 0.5}})
    devices = [  # (id, vendor, kind, address, area)
        ("MQ-SPK-1", "mqtt_speaker", "speaker", "mq-spk-1", COMMUNE),
        ("MQ-SPK-2", "mqtt_speaker", "speaker", "mq-spk-2", VILLAGE),  # a village counts for its commune
        ("MQ-LED-1", "mqtt_speaker", "led_board", "mq-led-1", COMMUNE),
        ("MQ-SPK-OFF", "mqtt_speaker", "speaker", "mq-spk-off", COMMUNE),  # offline: no simulator answers
        ("MQ-SPK-DIS", "mqtt_speaker", "speaker", "mq-spk-dis", COMMUNE),  # disabled by the administrator
        ("MQ-SPK-ELSE", "mqtt_speaker", "speaker", "mq-spk-else", ELSEWHERE),  # not targeted
        ("GW-SPK-1", "http_gateway", "speaker", "GW0001", COMMUNE),
        ("GW-SPK-2", "http_gateway", "speaker", "GW0002", VILLAGE),
        ("MB-AMP-1", "modbus_board", "speaker", f"127.0.0.1:{modbus}/1", COMMUNE),  # cannot play audio
        ("MB-LED-1", "modbus_board", "led_board", f"127.0.0.1:{modbus}/2", COMMUNE),
        ("RS-LED-1", "serial_led", "led_board", f"socket://127.0.0.1:{serial}#1", VILLAGE),
    ]
    with rt.db.session() as s:
        for did, vendor, kind, address, area in devices:
            upsert_device(s, rt.plugins, {"id": did, "vendor": vendor, "kind": kind, "area_code": area,
                                          "address": address, "config": {}, "tags": []}, policy=rt.address_policy())
    with rt.db.session() as s:
        s.get(Device, "MQ-SPK-DIS").admin_state = "disabled"
        s.add(DeviceStatus(device_id="MQ-SPK-OFF", online=False, operating_state="offline",
                           state_since=utcnow() - timedelta(hours=2), state_reason="no heartbeat"))
        refs = {v: [device_ref(d) for d in s.scalars(select(Device).where(Device.vendor == v))] for v in SIMULATED}
    factories = rt.plugins.simulators()
    sims: dict[str, Any] = {"mqtt_speaker": Fleet(MQTT_HOST, MQTT_PORT, mqtt_prefix, [
        SimDevice("mq-spk-1", fetch_media=True), SimDevice("mq-spk-2", fetch_media=True),
        SimDevice("mq-spk-else", fetch_media=True), SimDevice("mq-led-1", kind="led_board")], status_interval=5)}
    set_runtime(rt)
    ingest = Ingest(rt)
    try:
        sims["mqtt_speaker"].start(timeout=30)
        for vendor in SIMULATED:
            sims[vendor] = factories[vendor](rt.settings.plugin_config(vendor), refs[vendor])
            sims[vendor].start()
        ingest.start()
        yield sims
    finally:
        ingest.stop()
        sims.pop("mqtt_speaker").stop(timeout=10, clear_retained=True)
        for sim in sims.values():
            sim.stop()
        set_runtime(None)


def _rows(rt: Runtime, command_ids: list[str]) -> dict[str, Delivery]:
    with rt.db.session() as s:
        return {d.device_id: d for d in s.scalars(select(Delivery).where(Delivery.command_id.in_(command_ids)))}


def test_one_step_emergency_reaches_every_device_of_a_mixed_vendor_commune(rt: Runtime, fleet: dict) -> None:
    app = create_app(rt)
    with serve(app) as base:
        rt.settings.public_base_url = base  # where devices fetch the audio
        operator = probe(rt, "op-long-huu-dong", ["operator"], [COMMUNE])
        ttl = scaled(20)  # long enough to speak and send; the offline speaker then ends expired
        expires = (utcnow() + timedelta(seconds=ttl)).isoformat()
        body = {"text": TEXT, "target": {"areas": [COMMUNE]}, "expires_at": expires}

        preview = operator.send("POST", "/api/emergency/preview", body).get_json()
        fired_r = operator.send("POST", "/api/emergency", body)
        assert fired_r.status_code == 201, fired_r.get_json()
        fired = fired_r.get_json()
        make_worker(rt, threaded=True).work(burst=True, logging_level="WARNING")

        # what the console asked before firing is what firing answered
        for key in ("devices", "reaches", "communes", "summary", "by_kind", "by_vendor", "cannot_receive"):
            assert preview[key] == fired[key], key
        assert fired["summary"] == "7 devices in 1 commune" and fired["devices"] == 10
        assert fired["by_vendor"] == {"http_gateway": {"targeted": 2, "reaches": 2},
                                      "modbus_board": {"targeted": 2, "reaches": 1},
                                      "mqtt_speaker": {"targeted": 5, "reaches": 3},
                                      "serial_led": {"targeted": 1, "reaches": 1}}
        assert fired["by_kind"] == {"led_board": {"targeted": 3, "reaches": 3},
                                    "speaker": {"targeted": 7, "reaches": 4}}
        named = {c["device_id"]: c["state"] for c in fired["cannot_receive"]}
        assert named == {"MQ-SPK-OFF": "offline", "MQ-SPK-DIS": "failed", "MB-AMP-1": "unsupported"}
        assert fired["speech"]["provider"] == "espeak_ng" and fired["speech"]["error"] is None
        commands = [fired["commands"]["play"], fired["commands"]["led_show"]]

        reached = {"MQ-SPK-1", "MQ-SPK-2", "MQ-LED-1", "GW-SPK-1", "GW-SPK-2", "MB-LED-1", "RS-LED-1"}
        wait_until(lambda: all(_rows(rt, commands)[d].state == "acked" for d in reached), scaled(30),
                   "every reachable device to ack")
        # the boards show the text byte-correct while the emergency lasts
        assert fleet["mqtt_speaker"].device("mq-led-1").led_text.encode() == " ".join(TEXT.split()).encode()
        assert fleet["modbus_board"].sims[0].unit(2).text_bytes == " ".join(TEXT.split()).encode()
        with rt.db.session() as s:
            rs_address = s.get(Device, "RS-LED-1").address
        assert fleet["serial_led"].board(rs_address).text_bytes == " ".join(TEXT.split()).encode()

        # the speakers got the Vietnamese audio the emergency voice made
        stored = rt.media_store().get(_media_key(rt, fired["content_id"])).data
        for name in ("mq-spk-1", "mq-spk-2"):
            got = fleet["mqtt_speaker"].device(name).command(fired["commands"]["play"])
            assert got.fetch is not None and got.fetch.ok and got.fetch.data == stored, got.fetch
        for address in ("GW0001", "GW0002"):
            url = fleet["http_gateway"].observe(address)["source"]
            assert url and "sig=" in url
            with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - loopback, the hub's own URL
                assert r.read() == stored
        assert not fleet["mqtt_speaker"].device("mq-spk-else").commands  # another commune heard nothing

        wait_until(lambda: all(r.state not in ("queued", "sent") for r in _rows(rt, commands).values()),
                   ttl + scaled(15), "the offline speaker's delivery to expire")
    rows = _rows(rt, commands)
    assert set(rows) == TARGETED and len(rows) == fired["devices"]  # one row each, none elsewhere
    assert {d: r.state for d, r in rows.items() if r.state != "acked"} == {
        "MQ-SPK-OFF": "expired", "MQ-SPK-DIS": "failed", "MB-AMP-1": "unsupported"}
    assert all(rows[d].reason for d in ("MQ-SPK-OFF", "MQ-SPK-DIS", "MB-AMP-1"))
    assert sum(r.state == "acked" for r in rows.values()) == fired["reaches"]
    with rt.db.session() as s:
        entries = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "emergency.fire")))
        assert len(entries) == 1 and entries[0].actor == "op-long-huu-dong"
        assert entries[0].detail["commands"] == fired["commands"] and entries[0].detail["reaches"] == 7


def _media_key(rt: Runtime, content_id: str) -> str:
    with rt.db.session() as s:
        return s.get(Content, content_id).media["key"]
