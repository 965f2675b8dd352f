"""Schemas of the registry: areas, devices and groups, as imported and as served by the API."""
from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from hub.capabilities import CAPABILITIES, DEVICE_KINDS
from hub.schemas.fields import TextSchema
from hub.schemas.status import DeviceStatusSchema

_id = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
                      error="must be 1–64 letters, digits, or _ . : - (starting with a letter or digit)")


class AreaSchema(TextSchema):
    code = fields.Str(required=True, validate=_id)
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    type = fields.Str(load_default="area", validate=validate.Length(min=1, max=40),
                      metadata={"description": "province, district, commune, village…"})
    parent_code = fields.Str(allow_none=True, load_default=None, validate=_id)
    level = fields.Int(dump_only=True)
    path = fields.Str(dump_only=True)


class DeviceSchema(TextSchema):
    id = fields.Str(required=True, validate=_id)
    name = fields.Str(load_default="", validate=validate.Length(max=200))
    vendor = fields.Str(required=True, validate=validate.Length(min=1, max=64),
                        metadata={"description": "Name of the vendor plugin that drives it"})
    model = fields.Str(allow_none=True, validate=validate.Length(max=100))
    kind = fields.Str(required=True, validate=validate.OneOf(DEVICE_KINDS))
    area_code = fields.Str(required=True, validate=_id)
    address = fields.Str(required=True, validate=validate.Length(min=1, max=200),
                         metadata={"description": "How the vendor protocol reaches it (serial, client id, URL…)"})
    capabilities = fields.List(fields.Str(validate=validate.OneOf(sorted(CAPABILITIES))),
                               metadata={"description": "Defaults to everything the vendor plugin declares "
                                                        "for this device kind"})
    tags = fields.List(fields.Str(validate=validate.Length(min=1, max=64)), load_default=list)
    config = fields.Dict(keys=fields.Str(), load_default=dict)
    admin_state = fields.Str(load_default="enabled", validate=validate.OneOf(["enabled", "disabled"]))
    # Any place on Earth: a province's bounds are not the schema's to know (a device on an island, a
    # test bench abroad); the ranges still catch a value typed in the wrong field.
    latitude = fields.Float(allow_none=True, load_default=None, validate=validate.Range(
        min=-90, max=90, error="latitude {input} is outside -90..90 degrees"), metadata={
        "description": "WGS 84 degrees, given with longitude or not at all; a target's geometry selects by it"})
    longitude = fields.Float(allow_none=True, load_default=None, validate=validate.Range(
        min=-180, max=180, error="longitude {input} is outside -180..180 degrees"), metadata={
        "description": "WGS 84 degrees, given with latitude or not at all"})
    status = fields.Nested(DeviceStatusSchema(partial=True), dump_only=True, allow_none=True)
    created_at = fields.AwareDateTime(dump_only=True)

    @validates_schema
    def _both_coordinates(self, data: dict[str, Any], **_: Any) -> None:
        # One coordinate alone places the device nowhere, and would silently keep it out of every geometry
        lat, lon = data.get("latitude"), data.get("longitude")
        if (lat is None) != (lon is None):
            missing = "longitude" if lon is None else "latitude"
            raise ValidationError(f"give {missing} too, or neither coordinate", field_name=missing)


class GroupSchema(TextSchema):
    id = fields.Str(required=True, validate=_id)
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    area_code = fields.Str(allow_none=True, load_default=None, validate=_id)
    devices = fields.List(fields.Str(validate=_id), load_default=list)
