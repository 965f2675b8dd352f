"""What a vendor plugin declares about itself."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from hub.capabilities import CAPABILITIES, DEVICE_KINDS


class ManifestSchema(Schema):
    name = fields.Str(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,63}$"))
    title = fields.Str(required=True)
    version = fields.Str(required=True)
    protocols = fields.List(fields.Str(), required=True)
    device_kinds = fields.List(fields.Str(validate=validate.OneOf(DEVICE_KINDS)), required=True)
    capabilities = fields.List(fields.Str(validate=validate.OneOf(sorted(CAPABILITIES))), required=True)
    config_schema = fields.Dict(metadata={"description": "JSON Schema of the plugin's configuration"})
    address = fields.Dict(metadata={"description": "The form of the vendor's device addresses (hub.addresses): "
                                                   "kind (serial_port, network_endpoint, mqtt_topic_segment, "
                                                   "identifier, text) and its parameters"})
    traits = fields.Dict(metadata={"description": "What the devices do beyond the capabilities: volume_scale, "
                                                  "priority (device|hub), confirmation (ack|readback), status_list, "
                                                  "led_text_max_bytes"})
