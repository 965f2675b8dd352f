"""Which devices a command reaches.

Scope: the union of `areas` (each with its whole subtree), `devices` and `groups`; at least
one must be given, so that no command reaches "everything" by omission.
Filters narrow the scope: `kinds`, `vendors`, `tags` (a device must carry all of them) and
`capability`. `exclude` removes devices by the same scope keys.
"""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from hub.capabilities import CAPABILITIES, DEVICE_KINDS
from hub.schemas.fields import TextSchema

_code = fields.Str(validate=validate.Length(min=1, max=64))


class ExclusionSchema(Schema):
    areas = fields.List(_code)
    devices = fields.List(_code)
    groups = fields.List(_code)
    tags = fields.List(_code)


class TargetSchema(TextSchema):
    areas = fields.List(_code, metadata={"description": "Administrative unit codes; each includes its subtree"})
    devices = fields.List(_code, metadata={"description": "Device ids"})
    groups = fields.List(_code, metadata={"description": "Group ids"})
    kinds = fields.List(fields.Str(validate=validate.OneOf(DEVICE_KINDS)))
    vendors = fields.List(_code, metadata={"description": "Vendor plugin names"})
    tags = fields.List(_code, metadata={"description": "A device must carry every tag listed"})
    capability = fields.Str(validate=validate.OneOf(sorted(CAPABILITIES)))
    exclude = fields.Nested(ExclusionSchema)

    @validates_schema
    def _has_scope(self, data: dict[str, Any], **_: Any) -> None:
        if not (data.get("areas") or data.get("devices") or data.get("groups")):
            raise ValidationError("a target needs at least one of areas, devices or groups", field_name="areas")
