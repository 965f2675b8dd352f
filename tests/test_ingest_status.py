"""The ingest writer's status rules (hub.fleet.status_writer): a report older than the stored one is
ignored, several reports of a device in one batch are written once keeping the newest, and
health transitions are still recorded and published once each."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from hub import events
from hub.fleet import status_writer as ingest_status
from hub.delivery.ingest import Ingest
from hub.store.models import DeviceEvent, DeviceStatus
from hub.fleet.registry import upsert_device
from hub.runtime import Runtime

VENDOR = "mqtt_speaker"
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


def _report(minutes: float, volume: int, **extra: Any) -> dict[str, Any]:
    # reported_at in the devices' own zone (+07:00), as a device sends it: compared as instants
    at = (T0 + timedelta(minutes=minutes)).astimezone(timezone(timedelta(hours=7)))
    return {"online": True, "activity": "idle", "volume": volume, "faults": [], "reported_at": at, **extra}


@pytest.fixture
def ingest(rt: Runtime, legacy_areas: None) -> Ingest:
    pytest.importorskip("hub_mqtt_speaker")
    with rt.db.session() as s:
        for a in ("st-1", "st-2"):
            upsert_device(s, rt.plugins, {"id": a.upper(), "vendor": VENDOR, "kind": "speaker",
                                          "area_code": "27694", "address": a, "tags": []})
    return Ingest(rt, vendors=[])  # not started: the test feeds its sink and flushes by hand


def _row(rt: Runtime, device_id: str) -> DeviceStatus:
    with rt.db.session() as s:
        row = s.get(DeviceStatus, device_id)
        assert row is not None
        return row


def _history(rt: Runtime, device_id: str) -> list[tuple[str, str]]:
    with rt.db.session() as s:
        return [(e.previous, e.state) for e in s.scalars(select(DeviceEvent).where(DeviceEvent.device_id == device_id)
                                                         .order_by(DeviceEvent.id))]


def test_a_report_older_than_the_stored_one_is_ignored(rt: Runtime, ingest: Ingest) -> None:
    ingest.sink.status(VENDOR, "st-1", _report(5, 50, firmware="2.0"))
    ingest.flush()
    ingest.sink.status(VENDOR, "st-1", _report(4, 10, firmware="1.0", online=False))  # late, from another process
    ingest.flush()
    row = _row(rt, "ST-1")
    assert (row.volume, row.firmware, row.online, row.operating_state) == (50, "2.0", True, "online")
    assert row.reported_at == T0 + timedelta(minutes=5)
    assert ingest.stats["status"] == 1 and ingest.stats["status_stale"] == 1
    assert _history(rt, "ST-1") == [("unknown", "online")]  # the stale "offline" made no transition


def test_a_report_as_new_as_the_stored_one_is_applied_in_arrival_order(rt: Runtime, ingest: Ingest) -> None:
    ingest.sink.status(VENDOR, "st-1", _report(5, 50))
    ingest.flush()
    ingest.sink.status(VENDOR, "st-1", _report(5, 60))
    ingest.flush()
    assert _row(rt, "ST-1").volume == 60
    assert ingest.stats["status_stale"] == 0


def test_reports_of_one_device_in_a_batch_are_coalesced_keeping_the_newest(rt: Runtime, ingest: Ingest) -> None:
    seen: list[dict[str, Any]] = []
    unsubscribe = events.subscribe(seen.append)
    try:
        for minutes, volume in ((1, 11), (3, 33), (2, 22)):  # the 2-minute report arrives last, but is older
            ingest.sink.status(VENDOR, "st-1", _report(minutes, volume))
        ingest.sink.status(VENDOR, "st-2", _report(1, 70, faults=["amp_overheat"]))
        ingest.sink.status(VENDOR, "st-2", _report(2, 71, source="http://radio/vov1"))
        assert ingest.flush() == 5
    finally:
        unsubscribe()
    one, two = _row(rt, "ST-1"), _row(rt, "ST-2")
    assert (one.volume, one.reported_at) == (33, T0 + timedelta(minutes=3))
    # each report is applied over the one before: the newest wins, fields it leaves out stay
    assert (two.volume, two.source, two.faults, two.operating_state) == (71, "http://radio/vov1", [], "online")
    assert ingest.stats["status"] == 4 and ingest.stats["status_stale"] == 1
    assert ingest.stats["status_coalesced"] == 2
    # one transition per device and batch, from its last report, stored and published once
    assert _history(rt, "ST-1") == [("unknown", "online")] and _history(rt, "ST-2") == [("unknown", "online")]
    assert sorted((e["device_id"], e["type"]) for e in seen) == [("ST-1", "device.online"),
                                                                ("ST-2", "device.online")]


def test_presence_and_status_in_one_batch_apply_in_arrival_order(rt: Runtime, ingest: Ingest) -> None:
    ingest.sink.status(VENDOR, "st-1", _report(1, 40))
    ingest.sink.presence(VENDOR, "st-1", False)  # the last will after the report
    ingest.sink.presence(VENDOR, "st-2", True)
    ingest.sink.status(VENDOR, "st-2", _report(1, 41, faults=["speaker_open"]))
    ingest.flush()
    one, two = _row(rt, "ST-1"), _row(rt, "ST-2")
    assert (one.online, one.volume, one.operating_state) == (False, 40, "offline")
    assert "link lost" in (one.state_reason or "")
    assert one.last_seen_at is not None  # the report before the will was heard
    assert (two.online, two.operating_state, two.state_reason) == (True, "degraded", "faults: speaker_open")
    ingest.sink.presence(VENDOR, "st-1", True)
    ingest.flush()
    assert _row(rt, "ST-1").operating_state == "online"
    assert _history(rt, "ST-1") == [("unknown", "offline"), ("offline", "online")]


def test_the_sql_guard_keeps_a_newer_report_written_by_another_process(rt: Runtime, ingest: Ingest,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    ingest.sink.status(VENDOR, "st-1", _report(5, 50))
    ingest.flush()
    # This process read the row before another one stored the 5-minute report: it believes the
    # device has reported nothing newer than 1 minute, and would otherwise write its 3-minute one.
    real = ingest_status._stored

    def stale_view(session: Any, ids: list[str]) -> dict[str, Any]:
        out = real(session, ids)
        out["ST-1"].reported_at = T0 + timedelta(minutes=1)
        out["ST-1"].operating_state = "offline"
        return out
    monkeypatch.setattr(ingest_status, "_stored", stale_view)
    ingest.sink.status(VENDOR, "st-1", _report(3, 30))
    ingest.flush()
    row = _row(rt, "ST-1")
    assert (row.volume, row.reported_at) == (50, T0 + timedelta(minutes=5))
    assert ingest.stats["status_stale"] == 1 and ingest.stats["status"] == 1
    assert _history(rt, "ST-1") == [("unknown", "online")]  # no transition recorded for the refused write


def test_a_device_that_acked_and_reported_is_not_failing(rt: Runtime, ingest: Ingest) -> None:
    ingest.sink.status(VENDOR, "st-1", _report(1, 40))
    ingest.flush()
    with rt.db.session() as s:
        s.get(DeviceStatus, "ST-1").consecutive_failures = 2
    with rt.db.session() as s:
        out = ingest_status.store(s, [ingest_status.Report("ST-1", "status", _report(2, 41), T0)], answered={"ST-1"})
    assert out.changes == []
    assert _row(rt, "ST-1").consecutive_failures == 0
