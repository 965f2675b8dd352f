"""End to end over real processes: hub worker and ingest as subprocesses, real Redis, real
Mosquitto, and 50 simulated MQTT speakers (plus 2 LED boards) in 3 communes of 2 districts."""
from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from hub.access.actors import LOCAL_ADMIN
from hub.store.db import utcnow
from hub.delivery.dispatch import counts, submit
from hub.store.models import Content, Delivery, DeviceStatus
from hub.fleet.registry import upsert_device
from hub.schemas import CommandSchema
from tests.support.services import MQTT_HOST, MQTT_PORT
from tests.support.processes import Proc, wait_until

hub_mqtt_speaker = pytest.importorskip("hub_mqtt_speaker")
from hub_mqtt_speaker.device import SimDevice  # noqa: E402
from hub_mqtt_speaker.simulator import Fleet  # noqa: E402

pytestmark = pytest.mark.slow

# commune → how many speakers; 27694 and 27697 are in district 794, 28099 in district 807
LAYOUT = {"27694": 20, "27697": 15, "28099": 15}
SILENT = "spk-28099-15"  # never answers


def _speakers() -> list[tuple[str, str]]:
    return [(f"spk-{commune}-{i:02d}", commune) for commune, n in LAYOUT.items() for i in range(1, n + 1)]


@pytest.fixture
def fleet_hub(rt, legacy_areas, config_file, mqtt_prefix, tmp_path):
    """Registered devices, their simulators, and the hub's worker and ingest processes."""
    with rt.db.session() as s:
        for address, commune in _speakers():
            upsert_device(s, rt.plugins, {"id": address.upper(), "vendor": "mqtt_speaker", "kind": "speaker",
                                          "area_code": commune, "address": address, "tags": []})
        for j in (1, 2):
            upsert_device(s, rt.plugins, {"id": f"LED-28099-{j}", "vendor": "mqtt_speaker", "kind": "led_board",
                                          "area_code": "28099", "address": f"led-28099-{j}", "tags": []})
    sims = [SimDevice(a, silent=(a == SILENT)) for a, _ in _speakers()]
    sims += [SimDevice(f"led-28099-{j}", kind="led_board") for j in (1, 2)]
    fleet = Fleet(MQTT_HOST, MQTT_PORT, mqtt_prefix, sims, status_interval=1.0)
    fleet.start(timeout=30)
    procs = [Proc("ingest", ["ingest"], config_file, tmp_path), Proc("worker", ["worker"], config_file, tmp_path)]
    try:
        # Ingest is listening once the retained presence of every answering device is in.
        def online() -> bool:
            with rt.db.session() as s:
                return len(s.scalars(select(DeviceStatus.device_id).where(DeviceStatus.online.is_(True))).all()) >= 51
        wait_until(online, 30, "devices to show online", procs)
        yield fleet, procs
    finally:
        for p in procs:
            p.stop()
        fleet.stop(clear_retained=True)


def _content(rt) -> str:
    with rt.db.session() as s:
        c = Content(id=uuid.uuid4().hex, title="Lịch tiêm chủng", kind="tts_text", language="vi",
                    body="Thông báo lịch tiêm chủng tháng 12.", media={"uri": "http://127.0.0.1/x.mp3",
                                                                         "duration_s": 1.0},
                    priority="normal", created_by="test", created_at=utcnow())
        s.add(c)
    return c.id


def _send(rt, raw: dict):
    return submit(rt, LOCAL_ADMIN, CommandSchema().load(raw))


def _finished(rt, cid: str, procs, timeout: float = 30) -> dict[str, Delivery]:
    def done() -> bool:
        with rt.db.session() as s:
            c = counts(s, cid)
        return c["queued"] + c["sent"] == 0
    wait_until(done, timeout, f"command {cid} to finish", procs)
    with rt.db.session() as s:
        return {d.device_id: d for d in s.scalars(select(Delivery).where(Delivery.command_id == cid))}


def test_a_command_to_one_commune_reaches_exactly_its_speakers(rt, fleet_hub) -> None:
    fleet, procs = fleet_hub
    sub = _send(rt, {"verb": "play", "content_id": _content(rt), "target": {"areas": ["27694"]}})
    rows = _finished(rt, sub.command.id, procs)
    assert sorted(rows) == sorted(a.upper() for a, c in _speakers() if c == "27694")
    assert {d.state for d in rows.values()} == {"acked"}
    for address, commune in _speakers():
        got = fleet.device(address).command(sub.command.id)
        assert (got is not None) == (commune == "27694"), address


def test_a_command_to_a_district_reaches_its_two_communes(rt, fleet_hub) -> None:
    fleet, procs = fleet_hub
    sub = _send(rt, {"verb": "set_volume", "params": {"level": 65}, "target": {"areas": ["794"]}})
    rows = _finished(rt, sub.command.id, procs)
    assert len(rows) == 35 and {d.state for d in rows.values()} == {"acked"}
    assert {d.device_id[4:9] for d in rows.values()} == {"27694", "27697"}
    # the volume read back by the device reaches the API's status
    from hub.api import create_app
    from hub.access.actors import local_admin

    client = create_app(rt, authenticator=local_admin).test_client()

    def reported() -> bool:
        body = client.get("/api/devices/SPK-27697-03/status").get_json()
        return body and body.get("volume") == 65
    wait_until(reported, 10, "volume 65 in the reported status", procs)
    status = client.get("/api/devices/SPK-27697-03/status").get_json()
    assert status["online"] is True and status["firmware"] and status["signal"]["network"]


def test_a_verb_some_devices_lack_marks_them_unsupported(rt, fleet_hub) -> None:
    fleet, procs = fleet_hub
    sub = _send(rt, {"verb": "led_show", "params": {"text": "Thông báo khẩn: bão số 3"},
                     "target": {"areas": ["28099"], "exclude": {"devices": [SILENT.upper()]}}})
    rows = _finished(rt, sub.command.id, procs)
    states = Counter(d.state for d in rows.values())
    assert states == {"unsupported": 14, "acked": 2}
    assert all("led.text" in d.reason for d in rows.values() if d.state == "unsupported")
    assert fleet.device("led-28099-1").led_text == "Thông báo khẩn: bão số 3"


def test_a_device_that_never_answers_ends_expired(rt, fleet_hub) -> None:
    fleet, procs = fleet_hub
    expires = (utcnow() + timedelta(seconds=3)).isoformat()
    sub = _send(rt, {"verb": "stop", "expires_at": expires, "target": {"areas": ["28099"], "kinds": ["speaker"]}})
    rows = _finished(rt, sub.command.id, procs, timeout=20)
    assert rows[SILENT.upper()].state == "expired"
    assert Counter(d.state for d in rows.values()) == {"acked": 14, "expired": 1}


def test_the_same_idempotency_key_twice_sends_once(rt, fleet_hub) -> None:
    fleet, procs = fleet_hub
    raw = {"verb": "set_volume", "params": {"level": 40}, "idempotency_key": "storm-3-volume",
           "target": {"devices": ["SPK-27694-01", "SPK-27694-02"]}}
    first, second = _send(rt, raw), _send(rt, raw)
    assert first.created and not second.created and first.command.id == second.command.id
    _finished(rt, first.command.id, procs)
    received = [c for c in fleet.device("spk-27694-01").commands if c.id == first.command.id]
    assert len(received) == 1
