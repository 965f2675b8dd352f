"""The health model: operating state apart from admin state, transitions logged once, events,
history for uptime."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from hub import events
from hub.store.db import utcnow
from hub.fleet.health import uptime
from hub.delivery.ingest import Ingest
from hub.store.models import DeviceEvent, DeviceStatus
from hub.fleet.registry import upsert_device
from tests.support.services import MQTT_HOST, MQTT_PORT
from tests.support.processes import wait_until

hub_mqtt_speaker = pytest.importorskip("hub_mqtt_speaker")
from hub_mqtt_speaker.device import SimDevice  # noqa: E402
from hub_mqtt_speaker.simulator import Fleet  # noqa: E402


def _state(rt, device_id: str) -> str | None:
    with rt.db.session() as s:
        row = s.get(DeviceStatus, device_id)
        return row.operating_state if row else None


def _history(rt, device_id: str) -> list[tuple[str, str]]:
    with rt.db.session() as s:
        return [(e.state, e.reason or "") for e in s.scalars(
            select(DeviceEvent).where(DeviceEvent.device_id == device_id).order_by(DeviceEvent.id))]


@pytest.fixture
def watched(rt, legacy_areas, mqtt_prefix):
    rt.settings.heartbeat_timeout_s = 1.5
    with rt.db.session() as s:
        for a in ("hb-1", "hb-2"):
            upsert_device(s, rt.plugins, {"id": a.upper(), "vendor": "mqtt_speaker", "kind": "speaker",
                                          "area_code": "27694", "address": a, "tags": []})
    seen: list[dict] = []
    unsubscribe = events.subscribe(seen.append)
    ingest = Ingest(rt, vendors=["mqtt_speaker"])
    ingest.start()
    fleet = Fleet(MQTT_HOST, MQTT_PORT, mqtt_prefix, [SimDevice("hb-1"), SimDevice("hb-2")], status_interval=0.3)
    fleet.start(timeout=15)
    try:
        wait_until(lambda: _state(rt, "HB-1") == "online" and _state(rt, "HB-2") == "online", 10, "online")
        yield fleet, seen
    finally:
        fleet.stop(clear_retained=True)
        ingest.stop()
        unsubscribe()


def test_a_device_that_stops_heartbeating_goes_offline_and_comes_back(rt, watched, caplog) -> None:
    fleet, seen = watched
    caplog.set_level(logging.INFO, logger="hub.fleet.health")
    fleet.set_faults("hb-1", silent=True)
    wait_until(lambda: _state(rt, "HB-1") == "offline", 6, "HB-1 offline after its heartbeat stopped")
    assert _state(rt, "HB-2") == "online"
    fleet.set_faults("hb-1", silent=False)
    wait_until(lambda: _state(rt, "HB-1") == "online", 6, "HB-1 back online")
    assert [s for s, _ in _history(rt, "HB-1")] == ["online", "offline", "online"]
    assert "no heartbeat for 1.5 s" in _history(rt, "HB-1")[1][1]
    went = [r for r in caplog.records if "HB-1 went offline" in r.getMessage()]
    back = [r for r in caplog.records if "HB-1 is back" in r.getMessage()]
    assert len(went) == 1 and len(back) == 1
    assert [e["type"] for e in seen if e["device_id"] == "HB-1"] == ["device.online", "device.offline",
                                                                     "device.online"]


def test_a_dropped_link_takes_the_device_offline_through_the_last_will(rt, watched) -> None:
    fleet, _ = watched
    fleet.kill("hb-2")
    wait_until(lambda: _state(rt, "HB-2") == "offline", 10, "HB-2 offline via last will")
    assert "link lost" in _history(rt, "HB-2")[-1][1]
    fleet.revive("hb-2")
    wait_until(lambda: _state(rt, "HB-2") == "online", 10, "HB-2 online again")


def test_deliveries_failing_in_a_row_take_a_device_offline(rt, legacy_areas) -> None:
    from tests.support import loopback_vendor
    from tests.support.dispatch import add, send, work
    from hub.runtime import set_runtime

    rt.plugins.register_module(loopback_vendor, "loopback")
    set_runtime(rt)
    try:
        add(rt, "down-9")
        ingest = Ingest(rt, vendors=[])
        with rt.db.session() as s:
            s.add(DeviceStatus(device_id="DOWN-9", online=True, operating_state="online", faults=[],
                               consecutive_failures=0, last_seen_at=utcnow()))
        for _ in range(3):
            ingest.sweep()
            assert _state(rt, "DOWN-9") == "online"
            send(rt, {"verb": "stop", "target": {"devices": ["DOWN-9"]}})
            work(rt)
        ingest.sweep()
        assert _state(rt, "DOWN-9") == "offline"
        assert "3 deliveries in a row" in _history(rt, "DOWN-9")[-1][1]
    finally:
        set_runtime(None)


def test_uptime_follows_the_history(rt, legacy_areas) -> None:
    t0 = utcnow().replace(microsecond=0)
    with rt.db.session() as s:
        upsert_device(s, rt.plugins, {"id": "U1", "vendor": "mqtt_speaker", "kind": "speaker", "area_code": "27694",
                                      "address": "u1", "tags": []})
        s.flush()
        for minutes, state, prev in ((0, "online", "unknown"), (30, "offline", "online"), (45, "online", "offline")):
            s.add(DeviceEvent(device_id="U1", at=t0 + timedelta(minutes=minutes), state=state, previous=prev))
    with rt.db.session() as s:
        assert uptime(s, "U1", t0, t0 + timedelta(minutes=60)) == pytest.approx(0.75)
