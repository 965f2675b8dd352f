"""Which devices a command reaches.

Scope: the union of `areas` (each with its whole subtree), `devices` and `groups`; at least
one of them or `geometry` must be given, so that no command reaches "everything" by omission.
`geometry` (polygons and circles, hub.geography) selects the devices whose coordinates lie inside
it: given with areas, devices or groups it narrows them; given alone it selects within the
sender's own areas (everywhere for an unrestricted sender). Devices without coordinates are
never selected by geometry.
Filters narrow the scope: `kinds`, `vendors`, `tags` (a device must carry all of them) and
`capability`. `exclude` removes devices by the same scope keys.
"""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from hub.capabilities import CAPABILITIES, DEVICE_KINDS
from hub.geography import MAX_CIRCLES, MAX_POLYGONS, MAX_RADIUS_KM, MAX_RING_POINTS, GeometryError, check_geometry
from hub.schemas.fields import TextSchema

_code = fields.Str(validate=validate.Length(min=1, max=64))


class ExclusionSchema(Schema):
    areas = fields.List(_code)
    devices = fields.List(_code)
    groups = fields.List(_code)
    tags = fields.List(_code)


# JSON Schema can say what each position of a point holds only loosely (its items are numbers of
# the wider range); check_geometry checks latitude and longitude each against its own range.
_coordinate = fields.Float(validate=validate.Range(min=-180, max=180))
_point = fields.List(_coordinate, validate=validate.Length(equal=2, error="a point is [latitude, longitude]"),
                     metadata={"description": "[latitude, longitude] in WGS 84 degrees — latitude first"})


class GeometrySchema(Schema):
    polygons = fields.List(
        fields.List(_point, validate=validate.Length(
            min=3, max=MAX_RING_POINTS, error="a polygon is {min} to {max} [latitude, longitude] points")),
        validate=validate.Length(max=MAX_POLYGONS, error="at most {max} polygons"),
        metadata={"description": (
            "Rings of [latitude, longitude] points (closed or not, no holes, at least 3 distinct points, "
            "not crossing itself). A device on the edge is inside")})
    circles = fields.List(
        fields.List(fields.Float(), validate=validate.Length(
            equal=3, error="a circle is [latitude, longitude, radius_km]")),
        validate=validate.Length(max=MAX_CIRCLES, error="at most {max} circles"),
        metadata={"description": (
            f"[latitude, longitude, radius_km]: devices within radius_km (0–{MAX_RADIUS_KM:g}) of the centre by "
            "great-circle distance. A device at exactly the radius is inside")})

    @validates_schema
    def _shapes(self, data: dict[str, Any], **_: Any) -> None:
        try:
            check_geometry(data.get("polygons") or (), data.get("circles") or ())
        except GeometryError as exc:
            error: Any = [exc.message]
            for part in reversed(exc.path[1:]):
                error = {part: error}
            raise ValidationError({exc.path[0]: error}) from None


class TargetSchema(TextSchema):
    areas = fields.List(_code, metadata={"description": "Administrative unit codes; each includes its subtree"})
    devices = fields.List(_code, metadata={"description": "Device ids"})
    groups = fields.List(_code, metadata={"description": "Group ids"})
    kinds = fields.List(fields.Str(validate=validate.OneOf(DEVICE_KINDS)))
    vendors = fields.List(_code, metadata={"description": "Vendor plugin names"})
    tags = fields.List(_code, metadata={"description": "A device must carry every tag listed"})
    capability = fields.Str(validate=validate.OneOf(sorted(CAPABILITIES)))
    exclude = fields.Nested(ExclusionSchema)
    geometry = fields.Nested(GeometrySchema, metadata={"description": (
        "Devices whose latitude/longitude lie in any of these polygons or circles. With areas, devices or "
        "groups: narrows them to the devices inside. Alone: the devices inside within the sender's own "
        "areas (everywhere for an unrestricted sender). Devices without coordinates are never selected; "
        "a geometry that holds no device gives a command reaching no device (total 0)")})

    @validates_schema
    def _has_scope(self, data: dict[str, Any], **_: Any) -> None:
        if not (data.get("areas") or data.get("devices") or data.get("groups") or data.get("geometry")):
            raise ValidationError("a target needs at least one of areas, devices, groups or geometry",
                                  field_name="areas")
