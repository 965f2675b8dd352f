"""One emergency across five vendors' protocols at once: MQTT speakers and board, an HTTP
vendor gateway, real Snapcast, a Modbus TCP controller and RS-485 boards behind a serial link.
Every device ends in the state its capabilities call for, visible per device through the API,
and the LED text arrives byte-correct (transliterated only where a board cannot show it)."""
from __future__ import annotations

import secrets
import uuid
from collections import Counter

import pytest

from hub.access.actors import LOCAL_ADMIN, local_admin
from hub.store.db import utcnow
from hub.delivery.dispatch import submit
from hub.devkit.embedded import free_port
from hub.delivery.ingest import Ingest
from hub.delivery.jobs import device_ref
from hub.store.models import Content, Device
from hub.fleet.registry import upsert_device
from hub.runtime import set_runtime
from hub.schemas import CommandSchema
from hub.delivery.worker import make_worker
from tests.support.services import MQTT_HOST, MQTT_PORT
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow
VENDORS = ("mqtt_speaker", "http_gateway", "snapcast", "modbus_board", "serial_led")
for _module in ("hub_mqtt_speaker", "hub_http_gateway", "hub_snapcast", "hub_modbus_board", "hub_serial_led"):
    pytest.importorskip(_module)

STREAM = "http://127.0.0.1:8000/khan-cap"  # the province's live emergency relay (never fetched here)
TEXT = "Thông báo khẩn: bão số 3"
AREA = "28099"


@pytest.fixture
def fleet(rt, legacy_areas, mqtt_prefix):
    modbus, serial = free_port(), free_port()
    rt.settings.device_networks = ["127.0.0.1"]  # the simulators' loopback ports (hub.addresses)
    rt.settings.plugins.update({
        "mqtt_speaker": {"host": MQTT_HOST, "port": MQTT_PORT, "topic_prefix": mqtt_prefix},
        "http_gateway": {"base_url": f"http://127.0.0.1:{free_port()}", "api_key": secrets.token_urlsafe(24)},
        "snapcast": {"host": "127.0.0.1", "control_port": free_port(), "relay_streams": {STREAM: "emergency"}},
        "modbus_board": {"timeout_s": 1.0},
        "serial_led": {"timeout_s": 0.5},
    })
    devices = [  # (id, vendor, kind, address, config)
        ("MQ-SPK-1", "mqtt_speaker", "speaker", "mq-spk-1", {}),
        ("MQ-SPK-2", "mqtt_speaker", "speaker", "mq-spk-2", {}),
        ("MQ-LED-1", "mqtt_speaker", "led_board", "mq-led-1", {}),
        ("GW-SPK-1", "http_gateway", "speaker", "GW0001", {}),
        ("GW-SPK-2", "http_gateway", "speaker", "GW0002", {}),
        ("SNAP-1", "snapcast", "speaker", "snap-1", {}),
        ("SNAP-2", "snapcast", "speaker", "snap-2", {}),
        ("MB-AMP-1", "modbus_board", "speaker", f"127.0.0.1:{modbus}/1", {}),
        ("MB-LED-1", "modbus_board", "led_board", f"127.0.0.1:{modbus}/2", {}),
        ("RS-LED-1", "serial_led", "led_board", f"socket://127.0.0.1:{serial}#1", {}),
        ("RS-LED-2", "serial_led", "led_board", f"socket://127.0.0.1:{serial}#2", {"unicode": False}),
    ]
    with rt.db.session() as s:
        for did, vendor, kind, address, config in devices:
            upsert_device(s, rt.plugins, {"id": did, "vendor": vendor, "kind": kind, "area_code": AREA,
                                          "address": address, "config": config, "tags": []},
                          policy=rt.address_policy())
    with rt.db.session() as s:
        refs = {v: [device_ref(d) for d in s.query(Device).filter(Device.vendor == v)] for v in VENDORS}
    factories = rt.plugins.simulators()
    sims = {}
    set_runtime(rt)
    ingest = Ingest(rt)
    try:
        for vendor in VENDORS:
            sims[vendor] = factories[vendor](rt.settings.plugin_config(vendor), refs[vendor])
            sims[vendor].start()
        ingest.start()
        yield sims
    finally:
        ingest.stop()
        for sim in sims.values():
            sim.stop()
        set_runtime(None)


def _deliveries(client, command_id: str) -> dict[str, dict]:
    body = client.get(f"/api/commands/{command_id}/deliveries?page_size=100").get_json()
    rows = body["items"] if isinstance(body, dict) else body
    return {r["device_id"]: r for r in rows}


def test_one_emergency_reaches_five_vendors_protocols(rt, fleet) -> None:
    from hub.api import create_app

    with rt.db.session() as s:
        s.add(Content(id=uuid.uuid4().hex, title="Bão số 3 — tiếp sóng khẩn", kind="stream", language="vi",
                      media={"uri": STREAM}, priority="emergency", created_by="test", created_at=utcnow()))
        content_id = s.query(Content).one().id
    play = submit(rt, LOCAL_ADMIN, CommandSchema().load({"verb": "play", "content_id": content_id,
                                                         "target": {"areas": [AREA]}}))
    led = submit(rt, LOCAL_ADMIN, CommandSchema().load({"verb": "led_show", "priority": "emergency",
                                                        "params": {"text": TEXT}, "target": {"areas": [AREA]}}))
    assert play.command.priority == "emergency" and play.command.total == led.command.total == 11
    make_worker(rt, threaded=True).work(burst=True, logging_level="WARNING")
    client = create_app(rt, authenticator=local_admin).test_client()

    def finished() -> bool:
        rows = {**_deliveries(client, play.command.id), **{k + "/led": v for k, v in
                                                           _deliveries(client, led.command.id).items()}}
        return all(r["state"] not in ("queued", "sent") for r in rows.values())
    wait_until(finished, 30, "every device to finish")

    played = {d: r["state"] for d, r in _deliveries(client, play.command.id).items()}
    assert played == {"MQ-SPK-1": "acked", "MQ-SPK-2": "acked", "GW-SPK-1": "acked", "GW-SPK-2": "acked",
                      "SNAP-1": "acked", "SNAP-2": "acked", "MB-AMP-1": "unsupported", "MQ-LED-1": "unsupported",
                      "MB-LED-1": "unsupported", "RS-LED-1": "unsupported", "RS-LED-2": "unsupported"}
    shown = {d: r["state"] for d, r in _deliveries(client, led.command.id).items()}
    assert Counter(shown.values()) == {"acked": 4, "unsupported": 7}
    assert {d for d, st in shown.items() if st == "acked"} == {"MQ-LED-1", "MB-LED-1", "RS-LED-1", "RS-LED-2"}

    # byte-correct on the boards that show Vietnamese, transliterated on the one that cannot
    assert fleet["mqtt_speaker"].device("mq-led-1").led_text.encode() == TEXT.encode()
    assert fleet["modbus_board"].sims[0].unit(2).text_bytes == TEXT.encode()
    serial = fleet["serial_led"]
    assert serial.board(rt_address(rt, "RS-LED-1")).text_bytes == TEXT.encode()
    assert serial.board(rt_address(rt, "RS-LED-2")).text == "Thong bao khan: bao so 3"


def rt_address(rt, device_id: str) -> str:
    with rt.db.session() as s:
        return s.get(Device, device_id).address
