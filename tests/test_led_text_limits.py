"""A led_show whose text does not fit a board — counted in bytes of the board's own encoding —
ends `failed` for that board with the limit and the length in its reason, instead of `acked`
with the text cut short; the command's other boards show it whole. Three vendors' simulators:
MQTT boards (one with a 64-byte panel that, like real ones, would keep what fits and ack), a
Modbus TCP controller (its vendor's 256-byte text slot) and RS-485 boards (limits from their config,
one sent ASCII)."""
from __future__ import annotations

import pytest

from hub.access.actors import LOCAL_ADMIN, local_admin
from hub.api import create_app
from hub.delivery.dispatch import submit
from hub.delivery.ingest import Ingest
from hub.delivery.jobs import device_ref
from hub.delivery.worker import make_worker
from hub.devkit.embedded import free_port
from hub.fleet.registry import upsert_device
from hub.runtime import set_runtime
from hub.schemas import CommandSchema
from hub.store.models import Device
from hub.text import to_ascii
from tests.support.processes import wait_until
from tests.support.services import MQTT_HOST, MQTT_PORT

VENDORS = ("mqtt_speaker", "modbus_board", "serial_led")
for _module in ("hub_mqtt_speaker", "hub_modbus_board", "hub_serial_led"):
    pytest.importorskip(_module)

AREA = "28099"
# 48 characters, 65 bytes in UTF-8, 48 in ASCII once transliterated
TEXT = "Thông báo: cắt điện từ 7 giờ đến 11 giờ ngày mai"
LONG = "Bão số 3 đang tiến vào đất liền, người dân hạn chế ra đường. " * 5  # 300+ bytes


@pytest.fixture
def boards(rt, legacy_areas, mqtt_prefix):
    modbus, serial = free_port(), free_port()
    rt.settings.device_networks = ["127.0.0.1"]
    rt.settings.plugins.update({
        "mqtt_speaker": {"host": MQTT_HOST, "port": MQTT_PORT, "topic_prefix": mqtt_prefix},
        "modbus_board": {"timeout_s": 1.0},
        "serial_led": {"timeout_s": 0.5},
    })
    devices = [  # (id, vendor, address, config)
        ("MQ-SMALL", "mqtt_speaker", "mq-small", {"led_text_max_bytes": 64}),
        ("MQ-WIDE", "mqtt_speaker", "mq-wide", {}),
        ("MB-LED", "modbus_board", f"127.0.0.1:{modbus}/2", {}),
        ("RS-UTF8", "serial_led", f"socket://127.0.0.1:{serial}#1", {"led_text_max_bytes": 60}),
        ("RS-ASCII", "serial_led", f"socket://127.0.0.1:{serial}#2", {"led_text_max_bytes": 60, "unicode": False}),
    ]
    with rt.db.session() as s:
        for did, vendor, address, config in devices:
            upsert_device(s, rt.plugins, {"id": did, "vendor": vendor, "kind": "led_board", "area_code": AREA,
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


def _show(rt, client, text: str) -> dict[str, dict]:
    sub = submit(rt, LOCAL_ADMIN, CommandSchema().load({"verb": "led_show", "params": {"text": text},
                                                        "target": {"areas": [AREA]}}))
    make_worker(rt, threaded=True).work(burst=True, logging_level="WARNING")
    url = f"/api/commands/{sub.command.id}/deliveries"

    def rows() -> dict[str, dict]:
        return {r["device_id"]: r for r in client.get(url).get_json()}
    wait_until(lambda: all(r["state"] not in ("queued", "sent") for r in rows().values()), 30, "every board")
    return rows()


def test_text_too_long_for_a_board_fails_there_and_nowhere_else(rt, boards) -> None:
    client = create_app(rt, authenticator=local_admin).test_client()
    assert len(TEXT.encode()) == 65 and len(to_ascii(TEXT)) == 48

    rows = _show(rt, client, TEXT)
    assert {d: r["state"] for d, r in rows.items()} == {
        "MQ-SMALL": "failed", "RS-UTF8": "failed",  # 65 bytes of UTF-8 do not fit 64 or 60
        "MQ-WIDE": "acked", "MB-LED": "acked", "RS-ASCII": "acked"}  # 48 bytes of ASCII fit 60
    assert rows["MQ-SMALL"]["reason"].startswith("text is 65 bytes in UTF-8; this board holds at most 64 bytes")
    assert "65 bytes in UTF-8" in rows["RS-UTF8"]["reason"] and "at most 60 bytes" in rows["RS-UTF8"]["reason"]
    # The small board never got the text it would have cut to 64 bytes and acked
    mqtt, serial = boards["mqtt_speaker"], boards["serial_led"]
    assert mqtt.device("mq-small").led_text is None
    assert mqtt.device("mq-wide").led_text == TEXT
    assert boards["modbus_board"].sims[0].unit(2).text_bytes == TEXT.encode()
    with rt.db.session() as s:
        ascii_board, utf8_board = (serial.board(s.get(Device, did).address) for did in ("RS-ASCII", "RS-UTF8"))
    assert ascii_board.text == to_ascii(TEXT) and utf8_board.text_bytes == b""


def test_the_vendors_own_limit_applies_without_device_config(rt, boards) -> None:
    client = create_app(rt, authenticator=local_admin).test_client()
    n = len(LONG.strip().encode())
    assert n > 256
    rows = _show(rt, client, LONG.strip())
    assert rows["MB-LED"]["state"] == "failed"
    assert rows["MB-LED"]["reason"].startswith(f"text is {n} bytes in UTF-8; this board holds at most 256 bytes")
    assert rows["MQ-WIDE"]["state"] == "acked"  # no limit known for it: sent whole
    assert boards["mqtt_speaker"].device("mq-wide").led_text == LONG.strip()
    assert boards["modbus_board"].sims[0].unit(2).text_bytes == b""  # nothing written to its registers
