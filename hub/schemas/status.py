"""What a device reports about itself, normalised across vendors."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from hub.schemas.fields import TextSchema

ACTIVITIES = ("idle", "playing", "relaying", "showing", "off", "unknown")
NETWORKS = ("2g", "3g", "4g", "5g", "ethernet", "wifi", "unknown")


class SignalSchema(Schema):
    network = fields.Str(validate=validate.OneOf(NETWORKS))
    rssi_dbm = fields.Int(validate=validate.Range(min=-150, max=0))
    quality = fields.Int(validate=validate.Range(min=0, max=100), metadata={"description": "0–100"})


class DeviceStatusSchema(TextSchema):
    online = fields.Bool(required=True)
    activity = fields.Str(load_default="unknown", validate=validate.OneOf(ACTIVITIES))
    source = fields.Str(allow_none=True, validate=validate.Length(max=2000),
                        metadata={"description": "Content id or stream URL being played or shown"})
    volume = fields.Int(allow_none=True, validate=validate.Range(min=0, max=100),
                        metadata={"description": "Normalised 0–100 whatever the vendor's scale"})
    brightness = fields.Int(allow_none=True, validate=validate.Range(min=0, max=100))
    power = fields.Bool(allow_none=True)
    signal = fields.Nested(SignalSchema, allow_none=True)
    faults = fields.List(fields.Str(validate=validate.Length(max=100)), load_default=list)
    firmware = fields.Str(allow_none=True, validate=validate.Length(max=100))
    reported_at = fields.AwareDateTime(required=True)
