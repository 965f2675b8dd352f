"""GET /api/devices reads its page with plain row selects (hub.api.device_rows): the dicts must be
exactly what device_dict gives for the ORM devices, whatever a device has or lacks."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from hub.api.device_rows import device_pages
from hub.api.devices import device_dict
from hub.api.schemas import DeviceOutSchema
from hub.store.models import Device, DeviceStatus
from hub.fleet.registry import upsert_device
from hub.runtime import Runtime


def test_row_pages_equal_the_orm_devices_dicts(rt: Runtime, legacy_areas: None) -> None:
    at = datetime(2026, 11, 23, 1, 2, 3, 456789, tzinfo=timezone.utc)
    with rt.db.session() as s:
        for i, tags in enumerate((["b", "a"], [], ["solo"])):
            upsert_device(s, rt.plugins, {"id": f"L{i}", "vendor": "mqtt_speaker", "kind": "speaker",
                                          "area_code": "27694", "address": f"l{i}", "tags": tags,
                                          "config": {"gain": i} if i else {},
                                          **({"latitude": 10.535, "longitude": 106.413} if i == 1 else {})})
        s.flush()
        s.add(DeviceStatus(device_id="L0", online=True, activity="playing", source="http://radio/vov1", volume=40,
                           signal={"network": "4g", "rssi_dbm": -70}, faults=["amp_hot"], firmware="2.1",
                           reported_at=at, last_seen_at=at, operating_state="degraded", state_reason="faults: amp_hot",
                           state_since=at, consecutive_failures=1))
        s.add(DeviceStatus(device_id="L2", online=False, operating_state="unknown", faults=[], consecutive_failures=0))
    ids = ["L2", "L0", "L1", "missing"]
    with rt.db.session() as s:
        got = device_pages(s, ids)
        want = [device_dict(d) for d in (s.get(Device, i) for i in ids) if d is not None]
        assert len(list(s.scalars(select(Device.id).where(Device.id.in_(ids))))) == 3  # "missing" is left out
    assert got == want
    schema = DeviceOutSchema(many=True)
    assert schema.dump(got) == schema.dump(want)
    assert got[1]["tags"] == ["a", "b"] and got[2]["status"] is None and got[0]["status"]["online"] is False
    assert (got[2]["latitude"], got[2]["longitude"]) == (10.535, 106.413) and got[0]["latitude"] is None
