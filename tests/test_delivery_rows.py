"""A delivery row names its device (name, address, vendor, kind) and its commune, and a page of
them costs the same few SQL statements whether it holds ten rows or three hundred."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event

from hub.access.actors import local_admin
from hub.api import create_app
from hub.runtime import Runtime
from hub.store.models import Device

AREAS = ("27694", "27697", "28099", "28099-A1")  # three communes and a village (Ấp 1) of Xã Long Hựu Đông
COMMUNES = {"27694": "Phường 1", "27697": "Phường 2", "28099": "Xã Long Hựu Đông", "28099-A1": "Xã Long Hựu Đông"}
N = 320


@contextmanager
def statements(rt: Runtime) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        seen.append(sql)
    event.listen(rt.db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", count)


@pytest.fixture
def fleet(rt: Runtime, legacy_areas: None, vendors: dict[str, str]) -> FlaskClient:
    now = datetime.now(timezone.utc)
    with rt.db.session() as s:
        s.add_all(Device(id=f"spk-{i:03d}", name=f"Cụm loa số {i}", vendor=vendors["speaker"], kind="speaker",
                         area_code=AREAS[i % len(AREAS)], address=f"SPK{i:04d}", capabilities=["audio.volume"],
                         config={}, created_at=now) for i in range(N))
    return create_app(rt, authenticator=local_admin).test_client()


def test_rows_name_device_and_commune_in_flat_statements(rt: Runtime, fleet: FlaskClient) -> None:
    r = fleet.post("/api/commands", json={"verb": "set_volume", "params": {"level": 35}, "target": {"areas": ["80"]}})
    assert r.status_code == 201 and r.get_json()["total"] == N
    url = f"/api/commands/{r.get_json()['id']}/deliveries"

    with statements(rt) as small:
        ten = fleet.get(f"{url}?page_size=10").get_json()
    with statements(rt) as large:
        rows = fleet.get(f"{url}?page_size={N}").get_json()
    assert len(ten) == 10 and len(rows) == N
    assert len(large) == len(small) <= 8, large  # a join, not a select per row

    by_id = {row["device_id"]: row for row in rows}
    one = by_id["spk-007"]
    assert one["device"] == {"name": "Cụm loa số 7", "address": "SPK0007", "vendor": one["vendor"],
                             "kind": "speaker", "area_code": "28099-A1", "area_name": "Ấp 1"}
    assert one["commune"] == {"code": "28099", "name": "Xã Long Hựu Đông"}  # the village's commune
    assert {row["commune"]["name"] for row in rows} == set(COMMUNES.values())
    assert all(row["commune"]["name"] == COMMUNES[row["device"]["area_code"]] for row in rows)


def test_a_removed_devices_row_stays_without_its_name(rt: Runtime, fleet: FlaskClient) -> None:
    r = fleet.post("/api/commands", json={"verb": "set_volume", "params": {"level": 35},
                                          "target": {"devices": ["spk-000", "spk-001"]}})
    cid = r.get_json()["id"]
    assert fleet.delete("/api/devices/spk-000").status_code == 204
    rows = {row["device_id"]: row for row in fleet.get(f"/api/commands/{cid}/deliveries").get_json()}
    assert rows["spk-000"]["device"] is None and rows["spk-000"]["commune"] is None
    assert rows["spk-000"]["state"] == "queued"
    assert rows["spk-001"]["commune"] == {"code": "27697", "name": "Phường 2"}
