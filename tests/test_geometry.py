"""Polygons and circles select the devices whose coordinates lie inside them (hub.geography,
hub.fleet.targeting.devices_in), through the real dispatch and the loopback vendor.

The places are around Tân An, Long An (its centre near 10.535 N, 106.413 E); the areas are the
three-level test data (tests/data/legacy-three-level.yaml)."""
from __future__ import annotations

import math

import pytest
from sqlalchemy import select

from hub.access.actors import Actor
from hub.delivery.dispatch import DispatchError
from hub.fleet.targeting import devices_in
from hub.geography import GeometryError, check_geometry, haversine_km
from hub.store.db import Database, utcnow
from hub.store.models import Delivery, Device
from tests.support.dispatch import add, send, work
from tests.support.postgres import pg_url  # noqa: F401 - the throw-away PostgreSQL database fixture
from tests.support.services import DATA

TAN_AN = (10.535, 106.413)
KM_PER_DEG_LAT = math.pi * 6371.0088 / 180  # 111.195 km
KM_PER_DEG_LON = KM_PER_DEG_LAT * math.cos(math.radians(TAN_AN[0]))  # 109.32 km at Tân An

# An L: a bar along latitude 10.50–10.52 from 106.38 to 106.46 east, and a bar along longitude
# 106.38–106.40 from 10.50 to 10.58 north. Concave: its bounding box holds the empty square NE.
L_SHAPE = [[10.50, 106.38], [10.50, 106.46], [10.52, 106.46], [10.52, 106.40], [10.58, 106.40], [10.58, 106.38]]
PLACED = {  # address → (latitude, longitude, area)
    "ok-bar": (10.51, 106.44, "27694"),  # in the east-west bar
    "ok-post": (10.56, 106.39, "27697"),  # in the north-south bar, another commune
    "ok-edge": (10.52, 106.43, "27694"),  # exactly on the L's inner edge: inside
    "ok-corner": (10.58, 106.38, "27697"),  # on a vertex: inside
    "ok-notch": (10.55, 106.44, "27694"),  # in the concave notch, inside the bounding box: outside
    "ok-far": (10.70, 106.60, "28099"),  # well away
}


def place(rt, **devices: tuple[float, float, str]) -> None:
    for address, (lat, lon, area) in devices.items():
        add(rt, address, area=area, latitude=lat, longitude=lon)


def ids(rt, polygons=(), circles=(), within=None) -> list[str]:
    with rt.db.session() as s:
        return devices_in(s, polygons, circles, within)


def reached(rt, command_id: str) -> dict[str, str]:
    with rt.db.session() as s:
        return {d: st for d, st in s.execute(select(Delivery.device_id, Delivery.state)
                                                 .where(Delivery.command_id == command_id))}


def test_a_concave_polygon_selects_exactly_the_devices_inside_its_edges_included(hub) -> None:
    place(hub, **PLACED)
    add(hub, "ok-nowhere", area="27694")  # no coordinates: never inside any shape
    assert ids(hub, [L_SHAPE]) == ["OK-BAR", "OK-CORNER", "OK-EDGE", "OK-POST"]
    assert ids(hub, [L_SHAPE + [L_SHAPE[0]]]) == ["OK-BAR", "OK-CORNER", "OK-EDGE", "OK-POST"]  # closed ring
    assert ids(hub, [L_SHAPE[::-1]]) == ["OK-BAR", "OK-CORNER", "OK-EDGE", "OK-POST"]  # either winding


def test_latitude_and_longitude_are_never_swapped_on_a_lopsided_shape(hub) -> None:
    # A thin triangle along the equator, 10° long and 1° tall: (lat 0.2, lon 5) lies inside it; its
    # mirror image (lat 5, lon 0.2) lies inside only if an (x, y) = (lat, lon) mix-up crept in.
    place(hub, **{"ok-in": (0.2, 5.0, "27694"), "ok-mirror": (5.0, 0.2, "27694")})
    triangle = [[0, 0], [0, 10], [1, 0]]
    assert ids(hub, [triangle]) == ["OK-IN"]
    assert ids(hub, circles=[[0.2, 5.0, 1]]) == ["OK-IN"]


def test_a_circle_measures_kilometres_on_the_ground_around_tan_an(hub) -> None:
    lat, lon = TAN_AN
    place(hub, **{
        "ok-n-in": (lat + 4.9 / KM_PER_DEG_LAT, lon, "27694"),
        "ok-n-out": (lat + 5.1 / KM_PER_DEG_LAT, lon, "27694"),
        # east: 5 km is more degrees of longitude than of latitude; a circle drawn in degrees misses it
        "ok-e-in": (lat, lon + 4.9 / KM_PER_DEG_LON, "27697"),
        "ok-e-out": (lat, lon + 5.1 / KM_PER_DEG_LON, "27697"),
        "ok-centre": (lat, lon, "27694"),
        "ok-ben-luc": (10.637, 106.489, "28099"),  # Bến Lức, some 14 km north-east
    })
    assert 13 < haversine_km(lat, lon, 10.637, 106.489) < 15
    assert ids(hub, circles=[[lat, lon, 5]]) == ["OK-CENTRE", "OK-E-IN", "OK-N-IN"]
    assert ids(hub, circles=[[lat, lon, 15]]) == ["OK-BEN-LUC", "OK-CENTRE", "OK-E-IN", "OK-E-OUT", "OK-N-IN",
                                                  "OK-N-OUT"]
    assert ids(hub, circles=[[lat, lon, 0]]) == ["OK-CENTRE"]  # CAP's point: the radius is inclusive
    # shapes add up: a circle and a polygon select what either holds
    assert ids(hub, [L_SHAPE], [[10.637, 106.489, 1]]) == ["OK-BEN-LUC"]


def test_within_paths_bounds_the_selection_to_an_actors_areas(hub) -> None:
    place(hub, **PLACED)
    with hub.db.session() as s:
        commune = Actor(name="p1-op", roles=frozenset({"operator"}), areas=frozenset({"27694"}))
        assert devices_in(s, [L_SHAPE], within_paths=commune.area_paths(s)) == ["OK-BAR", "OK-EDGE"]
    assert ids(hub, [L_SHAPE], within=()) == []


def test_a_geometry_alone_reaches_only_into_the_senders_commune(hub) -> None:
    place(hub, **PLACED)
    op = Actor(name="p1-op", roles=frozenset({"operator"}), areas=frozenset({"27694"}))
    sub = send(hub, {"verb": "stop", "target": {"geometry": {"polygons": [L_SHAPE]}}}, actor=op)
    assert sub.command.total == 2
    work(hub)
    assert reached(hub, sub.command.id) == {"OK-BAR": "acked", "OK-EDGE": "acked"}


def test_a_geometry_narrows_named_areas_and_the_named_scope_is_still_checked(hub) -> None:
    place(hub, **PLACED)
    sub = send(hub, {"verb": "stop", "target": {"areas": ["794"], "geometry": {"polygons": [L_SHAPE]}}})
    assert sorted(reached(hub, sub.command.id)) == ["OK-BAR", "OK-CORNER", "OK-EDGE", "OK-POST"]
    sub = send(hub, {"verb": "stop", "target": {"areas": ["27697"], "tags": [],
                                                "geometry": {"polygons": [L_SHAPE]}}})
    assert sorted(reached(hub, sub.command.id)) == ["OK-CORNER", "OK-POST"]
    op = Actor(name="p1-op", roles=frozenset({"operator"}), areas=frozenset({"27694"}))
    with pytest.raises(DispatchError) as refused:  # a polygon does not widen an operator's reach
        send(hub, {"verb": "stop", "target": {"areas": ["794"], "geometry": {"polygons": [L_SHAPE]}}}, actor=op)
    assert refused.value.status == 403 and "area 794" in refused.value.message
    with pytest.raises(DispatchError) as refused:  # naming a device is refused even when the shape misses it
        send(hub, {"verb": "stop", "target": {"devices": ["OK-FAR"], "geometry": {"polygons": [L_SHAPE]}}},
             actor=op)
    assert refused.value.status == 403 and "device OK-FAR" in refused.value.message


def test_a_geometry_holding_no_device_gives_a_command_that_reaches_none(hub) -> None:
    place(hub, **PLACED)
    add(hub, "ok-nowhere", area="27694")
    sub = send(hub, {"verb": "stop", "target": {"geometry": {"circles": [[10.60, 106.45, 1]]}}})
    assert sub.command.total == 0 and sum(sub.counts.values()) == 0


@pytest.mark.parametrize("polygons, circles, field, says", [
    ([[[10.5, 106.4], [10.6, 106.4]]], [], "polygons[0]", "at least 3 distinct points"),
    ([[[10.5, 106.4], [10.6, 106.4], [10.5, 106.4]]], [], "polygons[0]", "at least 3 distinct points"),
    ([[[10.5, 106.4], [10.6, 106.5], [10.7, 106.6]]], [], "polygons[0]", "no area"),
    ([[[10.5, 106.4], [10.6, 106.5], [10.5, 106.5], [10.6, 106.4]]], [], "polygons[0]", "self-intersection near"),
    ([[[106.4, 10.5], [106.4, 10.6], [106.5, 10.6]]], [], "polygons[0]", "swapped"),
    ([[[10.5, 181], [10.6, 106.4], [10.5, 106.5]]], [], "polygons[0]", "longitude 181"),
    ([[[10, 179], [11, -179], [11, 179]]], [], "polygons[0]", "crosses the ±180° meridian"),
    ([], [[10.5, 106.4, -1]], "circles[0]", "radius -1"),
    ([], [[10.5, 106.4, float("nan")]], "circles[0]", "radius nan"),
    ([], [[95, 106.4, 1]], "circles[0]", "latitude 95"),
    ([], [], "polygons", "at least one polygon or circle"),
    ([[[10.5 + i * 1e-4, 106.4] for i in range(1001)]], [], "polygons[0]", "at most 1000"),
    ([[[10.5, 106.4], [10.6, 106.4], [10.6, 106.5]]] * 51, [], "polygons", "at most 50"),
])
def test_malformed_shapes_are_refused_naming_the_shape(polygons, circles, field, says) -> None:
    with pytest.raises(GeometryError) as bad:
        check_geometry(polygons, circles)
    assert bad.value.field == field and says in bad.value.message, bad.value


def test_the_bounding_box_prefilter_never_cuts_a_device_on_a_circles_edge() -> None:
    # Far north a degree of longitude is short: the box must widen with latitude.
    geo = check_geometry(circles=[[60.0, 10.0, 100.0]])
    (lat0, lat1, lon0, lon1), = geo.boxes()
    east = 10.0 + 99.9 / (math.pi * 6371.0088 / 180 * math.cos(math.radians(60)))
    assert geo.contains([60.0], [east])[0] and lon0 < 10.0 - (east - 10.0) * 0.99 and lon1 > east
    assert lat0 < 60.0 - 0.89 and lat1 > 60.0 + 0.89


def test_postgresql_selects_the_same_devices(pg_url: str) -> None:  # noqa: F811 - the fixture
    from hub.fleet.registry import import_area_file

    db = Database(pg_url)
    try:
        db.create()
        with db.session() as s:
            import_area_file(s, DATA / "legacy-three-level.yaml")
            for address, (lat, lon, area) in {**PLACED, "ok-nowhere": (None, None, "27694")}.items():
                s.add(Device(id=address.upper(), vendor="loopback", kind="speaker", area_code=area, address=address,
                             latitude=lat, longitude=lon, created_at=utcnow()))
        with db.session() as s:
            assert devices_in(s, [L_SHAPE]) == ["OK-BAR", "OK-CORNER", "OK-EDGE", "OK-POST"]
            commune = Actor(name="p1-op", roles=frozenset({"operator"}), areas=frozenset({"27694"}))
            assert devices_in(s, [L_SHAPE], [[10.70, 106.60, 0]], commune.area_paths(s)) == ["OK-BAR", "OK-EDGE"]
            assert devices_in(s, circles=[[10.70, 106.60, 0]]) == ["OK-FAR"]
    finally:
        db.dispose()
