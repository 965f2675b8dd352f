"""The hub's exchange schemas: the single source of truth for content, targets, commands,
device status and plugin manifests. `hub schemas export` writes them as JSON Schema into
`schemas/` for vendors working in any language."""
from hub.schemas.command import CommandSchema, VERB_PARAMS
from hub.schemas.content import ContentSchema
from hub.schemas.manifest import ManifestSchema
from hub.schemas.status import DeviceStatusSchema
from hub.schemas.target import TargetSchema

EXPORTED = {
    "content": ContentSchema,
    "target": TargetSchema,
    "command": CommandSchema,
    "device-status": DeviceStatusSchema,
    "plugin-manifest": ManifestSchema,
}

__all__ = [
    "CommandSchema",
    "ContentSchema",
    "DeviceStatusSchema",
    "ManifestSchema",
    "TargetSchema",
    "VERB_PARAMS",
    "EXPORTED",
]
