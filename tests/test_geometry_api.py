"""Coordinates and geometry through the doors a person uses: the API, device files and a `play`
command whose target is a polygon, delivered by a worker to the in-process loopback vendor."""
from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.access.actors import Actor, local_admin
from hub.api import create_app
from hub.fleet.registry import RegistryError, import_device_file
from hub.store.models import Delivery, Device
from tests.support.api import assert_error
from tests.support.dispatch import work

# Around Tân An, Long An. A triangle over Phường 1's market, leaning east; its mirror image in
# latitude and longitude would hold none of these devices.
TRIANGLE = [[10.530, 106.405], [10.530, 106.425], [10.545, 106.405]]
SPEAKERS = {  # id → (latitude, longitude, area)
    "SPK-CHO": (10.534, 106.410, "27694"),  # inside
    "SPK-BEN": (10.531, 106.420, "27694"),  # inside, near the long edge
    "SPK-P2": (10.538, 106.410, "27697"),  # inside, another commune
    "SPK-DEN": (10.543, 106.420, "27694"),  # outside: beyond the slanted edge
    "SPK-XA": (10.640, 106.490, "28099"),  # Bến Lức way, far outside
}


def speaker(did: str, lat: float | None = None, lon: float | None = None, area: str = "27694") -> dict:
    body = {"id": did, "vendor": "loopback", "kind": "speaker", "area_code": area, "address": f"ok-{did.lower()}"}
    if lat is not None:
        body |= {"latitude": lat, "longitude": lon}
    return body


@pytest.fixture
def api(hub) -> FlaskClient:
    c = create_app(hub, authenticator=local_admin).test_client()
    for did, (lat, lon, area) in SPEAKERS.items():
        r = c.post("/api/devices", json=speaker(did, lat, lon, area))
        assert r.status_code == 201, r.get_json()
    assert c.post("/api/devices", json=speaker("SPK-NOWHERE")).status_code == 201  # no coordinates
    return c


def audio(c: FlaskClient) -> str:
    r = c.post("/api/contents", json={"title": "Cảnh báo triều cường", "kind": "audio_file", "priority": "emergency",
                                      "media": {"uri": "http://127.0.0.1/canh-bao.mp3", "duration_s": 30},
                                      "publish": True})  # the administrator's one-step path: sendable at once
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def deliveries(hub, command_id: str) -> dict[str, str]:
    with hub.db.session() as s:
        return {d: st for d, st in s.execute(select(Delivery.device_id, Delivery.state)
                                             .where(Delivery.command_id == command_id))}


def test_play_to_a_polygon_reaches_exactly_the_speakers_inside(hub, api: FlaskClient) -> None:
    r = api.post("/api/commands", json={"verb": "play", "content_id": audio(api),
                                        "target": {"geometry": {"polygons": [TRIANGLE]}}})
    assert r.status_code == 201, r.get_json()
    cmd = r.get_json()
    assert cmd["total"] == 3 and cmd["target"]["geometry"]["polygons"] == [TRIANGLE]
    work(hub)
    assert deliveries(hub, cmd["id"]) == {"SPK-BEN": "acked", "SPK-CHO": "acked", "SPK-P2": "acked"}
    assert api.get(f"/api/commands/{cmd['id']}").get_json()["counts"]["acked"] == 3


def test_a_commune_operator_drawing_across_the_commune_line_reaches_only_their_commune(hub, api) -> None:
    content = audio(api)
    op = Actor(name="p1-op", roles=frozenset({"operator"}), areas=frozenset({"27694"}))
    c = create_app(hub, authenticator=lambda _req: op).test_client()
    r = c.post("/api/commands", json={"verb": "play", "content_id": content,
                                      "target": {"geometry": {"polygons": [TRIANGLE]}}})
    assert r.status_code == 201, r.get_json()
    work(hub)
    assert deliveries(hub, r.get_json()["id"]) == {"SPK-BEN": "acked", "SPK-CHO": "acked"}
    assert_error(c.post("/api/commands", json={"verb": "play", "content_id": content,
                                               "target": {"areas": ["27697"], "geometry": {"polygons": [TRIANGLE]}}}),
                 403, contains="area 27697")


def test_a_polygon_holding_no_device_is_accepted_reaching_none(api: FlaskClient) -> None:
    r = api.post("/api/commands", json={"verb": "stop", "target": {"geometry": {"circles": [[10.7, 106.7, 2]]}}})
    assert r.status_code == 201 and r.get_json()["total"] == 0
    assert set(r.get_json()["counts"].values()) == {0}


@pytest.mark.parametrize("geometry, path, says", [
    ({"polygons": [[[106.405, 10.53], [106.425, 10.53], [106.405, 10.545]]]}, ("polygons", "0"), "swapped"),
    ({"polygons": [[[10.53, 106.4], [10.54, 106.4]]]}, ("polygons", "0"), "a polygon is 3 to 1000"),
    ({"polygons": [[[10.53, 106.4], [10.54, 106.4], [10.53, 106.4]]]}, ("polygons", "0"), "3 distinct points"),
    ({"polygons": [[[10.53, 106.4, 5], [10.54, 106.4], [10.53, 106.5]]]}, ("polygons", "0", "0"), "a point is [latitude, longitude]"),
    ({"circles": [[10.535, 106.413, -1]]}, ("circles", "0"), "radius -1"),
    ({"circles": [[10.535, 106.413]]}, ("circles", "0"), "a circle is [latitude, longitude, radius_km]"),
    ({"circles": [["north", 106.413, 1]]}, ("circles", "0", "0"), "Not a valid number"),
    ({}, ("polygons",), "at least one polygon or circle"),
    ({"lines": []}, ("lines",), "Unknown field"),
])
def test_bad_geometry_is_422_naming_the_shape(api: FlaskClient, geometry: dict, path: tuple, says: str) -> None:
    body = assert_error(api.post("/api/commands", json={"verb": "stop", "target": {"geometry": geometry}}), 422,
                        contains=says)
    where = body["errors"]["json"]["target"]["geometry"]
    for part in path:
        where = where[part]
    assert any(says in m for m in where), body


def test_devices_carry_coordinates_both_or_neither(api: FlaskClient) -> None:
    got = api.get("/api/devices/SPK-CHO").get_json()
    assert (got["latitude"], got["longitude"]) == (10.534, 106.41)
    listed = {d["id"]: (d["latitude"], d["longitude"]) for d in api.get("/api/devices").get_json()}
    assert listed["SPK-CHO"] == (10.534, 106.41) and listed["SPK-NOWHERE"] == (None, None)
    moved = api.put("/api/devices/SPK-NOWHERE", json=speaker("SPK-NOWHERE", 10.536, 106.415))
    assert moved.status_code == 200 and moved.get_json()["latitude"] == 10.536
    assert_error(api.post("/api/devices", json={**speaker("SPK-X"), "latitude": 10.5}), 422, "json", "longitude",
                 "neither")
    assert_error(api.post("/api/devices", json=speaker("SPK-X", 106.4, 10.5)), 422, "json", "latitude", "106.4")
    assert_error(api.post("/api/devices", json=speaker("SPK-X", 10.5, 190)), 422, "json", "longitude", "190")
    assert_error(api.post("/api/devices", json=speaker("SPK-X", 10.5, "east")), 422, "json", "longitude")


def test_device_files_carry_coordinates(hub, tmp_path: Path) -> None:
    csv = tmp_path / "devices.csv"
    csv.write_text("id,vendor,kind,area_code,address,latitude,longitude\n"
                   "CSV-1,loopback,speaker,27694,ok-csv-1,10.534,106.41\n"
                   "CSV-2,loopback,speaker,27694,ok-csv-2,,\n", encoding="utf-8")
    yml = tmp_path / "devices.yaml"
    yml.write_text("devices:\n  - {id: YML-1, vendor: loopback, kind: speaker, area_code: '27697', address: ok-yml-1,"
                   " latitude: 10.538, longitude: 106.41}\n", encoding="utf-8")
    with hub.db.session() as s:
        assert import_device_file(s, hub.plugins, csv) == 2 and import_device_file(s, hub.plugins, yml) == 1
    with hub.db.session() as s:
        got = {d.id: (d.latitude, d.longitude) for d in s.scalars(select(Device))}
    assert got == {"CSV-1": (10.534, 106.41), "CSV-2": (None, None), "YML-1": (10.538, 106.41)}
    bad = tmp_path / "bad.csv"
    bad.write_text("id,vendor,kind,area_code,address,latitude,longitude\n"
                   "CSV-3,loopback,speaker,27694,ok-csv-3,10.5,\n", encoding="utf-8")
    with hub.db.session() as s, pytest.raises(RegistryError) as refused:
        import_device_file(s, hub.plugins, bad)
    assert refused.value.where == f"{bad}:2" and refused.value.field == "longitude"
