"""Where devices are, and the polygons and circles that select them.

Conventions (the hub's everywhere: API, schemas, CAP 1.2, hub.source.SourceItem):
* a point is **(latitude, longitude)** in WGS 84 degrees, in that order. shapely works in
  (x, y) = (longitude, latitude): shapes are built only here (`Geometry`), so no other module
  gets the order wrong.
* a polygon is one ring of points, closed or not, with no holes; its edges are straight lines in
  (longitude, latitude) degrees, as CAP draws them. No ring may cross the ±180° meridian.
* the boundary is **inclusive**: a device exactly on a polygon's edge or at exactly the radius is
  inside (shapely `covers`, distance ≤ radius). A warning drawn along a road or a river bank
  should reach the speaker standing on it, and rounding must not decide who hears an alert.
* a circle is (latitude, longitude, radius in km), measured by great-circle distance with the
  haversine formula on a sphere of the mean Earth radius. Its error against the WGS 84 ellipsoid
  is below 0.5 % at any distance, it needs no projection (a circle buffered in degrees would be an
  ellipse, 1° of longitude being shorter than 1° of latitude away from the equator) and it is
  exact for the zero radius of a CAP "point" circle.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import shapely

# numpy and shapely are imported where a shape is checked or matched, not with this module: every
# `hub` command and service imports it through the command schema, and most never draw a shape
# (the two cost ~0.15 s of each process's start).

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius
# Limits of one selection: beyond them a request is a mistake or a probe, not an alert area. CAP
# polygons are a few dozen points; a province's outline simplified for broadcast, a few hundred.
MAX_POLYGONS = 50
MAX_CIRCLES = 50
MAX_RING_POINTS = 1000
MAX_POINTS = 5000  # over all polygons
MAX_RADIUS_KM = 2000.0  # Vietnam is 1,650 km long; a larger radius is most likely metres
_EDGE = 1e-9  # degrees added around bounding boxes, so the SQL prefilter never cuts a point on the edge


class GeometryError(ValueError):
    """A polygon or circle is malformed. `path` locates it (("polygons", 0) is the first ring),
    `message` says what is wrong in words an operator can act on."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        self.path, self.message = path, message
        super().__init__(f"{self.field}: {message}")

    @property
    def field(self) -> str:
        """The path as text: polygons[0]."""
        return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(self.path))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _point(lat: Any, lon: Any, path: tuple[str | int, ...], what: str) -> tuple[float, float]:
    if not (_number(lat) and _number(lon)):
        raise GeometryError(path, f"{what}: latitude and longitude must be numbers, not {lat!r}, {lon!r}")
    if not -90 <= lat <= 90:
        hint = " (points are [latitude, longitude]: are they swapped?)" if -90 <= lon <= 90 else ""
        raise GeometryError(path, f"{what}: latitude {lat} is outside -90..90{hint}")
    if not -180 <= lon <= 180:
        raise GeometryError(path, f"{what}: longitude {lon} is outside -180..180")
    return float(lat), float(lon)


def _ring(ring: Any, i: int) -> tuple[tuple[float, float], ...]:
    path: tuple[str | int, ...] = ("polygons", i)
    if not isinstance(ring, Sequence) or isinstance(ring, str):
        raise GeometryError(path, "a polygon is a list of [latitude, longitude] points")
    if len(ring) > MAX_RING_POINTS:
        raise GeometryError(path, f"has {len(ring)} points; at most {MAX_RING_POINTS} (simplify the outline)")
    points = []
    for j, p in enumerate(ring):
        if not isinstance(p, Sequence) or isinstance(p, str) or len(p) != 2:
            raise GeometryError(path, f"point {j} must be [latitude, longitude]")
        points.append(_point(p[0], p[1], path, f"point {j}"))
    if len(set(points)) < 3:
        raise GeometryError(path, f"needs at least 3 distinct points, has {len(set(points))}")
    lons = [lon for _, lon in points]
    if max(lons) - min(lons) > 180:  # taken literally it would wrap the other way round the globe
        raise GeometryError(path, "spans more than 180° of longitude: split a ring that crosses the ±180° meridian")
    import shapely

    shape = shapely.Polygon([(lon, lat) for lat, lon in points])
    if shape.convex_hull.area == 0:  # (a figure eight has no area either, but it is not on one line)
        raise GeometryError(path, "encloses no area (its points lie on one line)")
    if not shape.is_valid:
        raise GeometryError(path, f"is not a simple ring: {_reason(shape)}")
    return tuple(points)


def _reason(shape: shapely.Geometry) -> str:
    """shapely's reason, with its (x y) location said as (latitude, longitude)."""
    import shapely

    reason = shapely.is_valid_reason(shape)
    head, _, where = reason.partition("[")
    try:
        x, y = (float(v) for v in where.rstrip("]").split())
    except ValueError:
        return reason
    return f"{head.strip().lower()} near latitude {y:.6f}, longitude {x:.6f}"


def _circle(circle: Any, i: int) -> tuple[float, float, float]:
    path: tuple[str | int, ...] = ("circles", i)
    if not isinstance(circle, Sequence) or isinstance(circle, str) or len(circle) != 3:
        raise GeometryError(path, "a circle is [latitude, longitude, radius in km]")
    lat, lon = _point(circle[0], circle[1], path, "centre")
    radius = circle[2]
    if not _number(radius) or not 0 <= radius <= MAX_RADIUS_KM:
        raise GeometryError(path, f"radius {radius!r} must be a number of km from 0 to {MAX_RADIUS_KM:g}")
    return lat, lon, float(radius)


@dataclass(frozen=True)
class Geometry:
    """Checked polygons and circles; a point is selected when it lies in any of them."""

    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()
    circles: tuple[tuple[float, float, float], ...] = ()

    def boxes(self) -> list[tuple[float, float, float, float]]:
        """(min latitude, max latitude, min longitude, max longitude) around each shape."""
        out = []
        for ring in self.polygons:
            lats, lons = [p[0] for p in ring], [p[1] for p in ring]
            out.append((min(lats) - _EDGE, max(lats) + _EDGE, min(lons) - _EDGE, max(lons) + _EDGE))
        for lat, lon, radius in self.circles:
            out.append(_circle_box(lat, lon, radius))
        return out

    def contains(self, lats: Sequence[float], lons: Sequence[float]) -> np.ndarray:
        """For each (lats[k], lons[k]): whether it lies in any shape (boundary included)."""
        import numpy as np
        import shapely

        lat = np.asarray(lats, dtype=float)
        lon = np.asarray(lons, dtype=float)
        inside = np.zeros(lat.shape, dtype=bool)
        if not len(lat):
            return inside
        if self.polygons:
            points = shapely.points(lon, lat)  # (x, y) = (longitude, latitude)
            for ring in self.polygons:
                shape = shapely.Polygon([(x, y) for y, x in ring])
                shapely.prepare(shape)  # many points against one shape: index its edges once
                inside |= shapely.covers(shape, points)
        for clat, clon, radius in self.circles:
            inside |= haversine_km(clat, clon, lat, lon) <= radius
        return inside


def haversine_km(lat1: float, lon1: float, lat2: Any, lon2: Any) -> Any:
    """Great-circle distance in km from one point to one or many (numpy arrays welcome)."""
    import numpy as np

    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _circle_box(lat: float, lon: float, radius: float) -> tuple[float, float, float, float]:
    """The latitude/longitude box around a spherical cap: exact, plus a margin for rounding."""
    angle = radius / EARTH_RADIUS_KM  # radians
    dlat = math.degrees(angle) + _EDGE
    lat0, lat1 = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    cos_lat = math.cos(math.radians(lat))
    if lat0 <= -90 or lat1 >= 90 or math.sin(angle) >= cos_lat:  # reaches a pole: every longitude
        return lat0, lat1, -180.0, 180.0
    dlon = math.degrees(math.asin(math.sin(angle) / cos_lat)) + _EDGE
    if lon - dlon < -180 or lon + dlon > 180:  # wraps the ±180° meridian: every longitude, exact test decides
        return lat0, lat1, -180.0, 180.0
    return lat0, lat1, lon - dlon, lon + dlon


def check_geometry(polygons: Sequence[Any] = (), circles: Sequence[Any] = ()) -> Geometry:
    """Checked, normalised shapes from [[lat, lon], …] rings and [lat, lon, radius_km] circles;
    GeometryError naming the first bad one. At least one shape is required."""
    polygons, circles = list(polygons or ()), list(circles or ())
    if not polygons and not circles:
        raise GeometryError(("polygons",), "give at least one polygon or circle")
    if len(polygons) > MAX_POLYGONS:
        raise GeometryError(("polygons",), f"{len(polygons)} polygons; at most {MAX_POLYGONS}")
    if len(circles) > MAX_CIRCLES:
        raise GeometryError(("circles",), f"{len(circles)} circles; at most {MAX_CIRCLES}")
    total = sum(len(r) for r in polygons if isinstance(r, Sequence))
    if total > MAX_POINTS:
        raise GeometryError(("polygons",), f"{total} points in all; at most {MAX_POINTS}")
    return Geometry(tuple(_ring(r, i) for i, r in enumerate(polygons)),
                    tuple(_circle(c, i) for i, c in enumerate(circles)))
