"""Schemas of what the API answers (the request bodies are the exchange schemas in hub.schemas)."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from hub.store.models import DELIVERY_STATES
from hub.schemas.registry import AreaSchema, DeviceSchema, GroupSchema, _id
from hub.schemas.status import DeviceStatusSchema
from hub.schemas.content import ContentSchema


class AreaOutSchema(AreaSchema):
    children = fields.Int(dump_only=True, metadata={"description": "Number of direct children"})


class DeviceOutSchema(DeviceSchema):
    area_name = fields.Str(dump_only=True)


class DeviceUpdateSchema(DeviceSchema):
    id = fields.Str(load_default=None, validate=_id,
                    metadata={"description": "Optional; must equal the id in the URL when given"})


class AdminStateSchema(Schema):
    admin_state = fields.Str(required=True, validate=validate.OneOf(["enabled", "disabled"]),
                             metadata={"description": "A disabled device fails every command at once"})


class DeviceStatusOutSchema(DeviceStatusSchema):
    last_seen_at = fields.AwareDateTime(allow_none=True, dump_only=True)
    operating_state = fields.Str(dump_only=True, metadata={
        "description": "online, degraded, offline or unknown — the hub's verdict, separate from admin_state"})
    state_reason = fields.Str(dump_only=True, allow_none=True)
    state_since = fields.AwareDateTime(dump_only=True, allow_none=True)


class GroupUpdateSchema(GroupSchema):
    id = fields.Str(load_default=None, validate=_id,
                    metadata={"description": "Optional; must equal the id in the URL when given"})


class ContentOutSchema(ContentSchema):
    created_by = fields.Str(dump_only=True)
    status = fields.Str(dump_only=True, allow_none=True, metadata={
        "description": "draft, submitted, approved, published, rejected or archived; null for a content made "
                       "before the editorial workflow, which counts as published"})
    version = fields.Int(dump_only=True, allow_none=True, metadata={
        "description": "Counts edits; send it back (or If-Match) to edit, so a stale edit is refused (409)"})
    updated_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    updated_by = fields.Str(dump_only=True, allow_none=True)
    reviewed_by = fields.Str(dump_only=True, allow_none=True, metadata={"description": "Who approved or rejected"})
    reviewed_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    published_by = fields.Str(dump_only=True, allow_none=True)
    published_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    reason = fields.Str(dump_only=True, allow_none=True, metadata={"description": "Why it was rejected or archived"})
    source = fields.Str(dump_only=True, allow_none=True, metadata={"description": "The configured source it came from"})
    external_id = fields.Str(dump_only=True, allow_none=True, metadata={"description": "The source's id of the item"})
    geography = fields.Dict(dump_only=True, allow_none=True, metadata={
        "description": "Where its source meant it for: area codes, polygons, circles"})
    speech = fields.Dict(dump_only=True, allow_none=True, metadata={
        "description": "How its text became audio: provider, voice, fallback_from (who failed first and why), "
                       "cache_key, loudness_lufs; or error when nobody could speak it"})


class ContentCreateSchema(ContentSchema):
    publish = fields.Bool(load_default=False, metadata={
        "description": "An administrator's emergency path: approve and publish at once (audited as "
                       "content.approve_and_publish); otherwise the content starts as a draft"})


class ContentEditSchema(ContentSchema):
    """An edit: only the fields given change."""

    version = fields.Int(metadata={"description": "The version the edit is based on (or send If-Match); "
                                                  "an edit of an older version is refused (409, rule stale)"})
    note = fields.Str(validate=validate.Length(max=500), metadata={"description": "Why, kept with the version"})

    def _kind_has_what_it_needs(self, data: dict[str, Any], **_: Any) -> None:
        """Not here: an edit names only some fields; hub.content.editing checks the edited whole."""


class ActionSchema(Schema):
    reason = fields.Str(validate=validate.Length(max=500), metadata={
        "description": "Why: required to reject; kept on the content and in the audit log"})


class ContentVersionSchema(Schema):
    version = fields.Int()
    changed_by = fields.Str()
    changed_at = fields.AwareDateTime()
    changes = fields.Dict(metadata={"description": "field → [before, after]"})
    note = fields.Str(allow_none=True)


CountsSchema = Schema.from_dict({state: fields.Int(required=True) for state in DELIVERY_STATES},
                               name="CountsSchema")


class CommandOutSchema(Schema):
    id = fields.Str()
    verb = fields.Str()
    params = fields.Dict()
    content_id = fields.Str(allow_none=True)
    priority = fields.Str()
    start_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "When it starts; null when it was sent at once. Its deliveries stay `scheduled` until then"})
    released_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "When the scheduler handed it to a worker (a lead time before start_at)"})
    cancelled_at = fields.AwareDateTime(allow_none=True)
    cancelled_by = fields.Str(allow_none=True)
    expires_at = fields.AwareDateTime()
    idempotency_key = fields.Str(allow_none=True)
    issuer = fields.Str()
    target = fields.Dict()
    created_at = fields.AwareDateTime()
    total = fields.Int(metadata={"description": "Devices the target selected"})
    counts = fields.Nested(CountsSchema, metadata={"description": "Deliveries in each state"})
    state = fields.Str(metadata={"description": "waiting (its start_at is not reached), running (deliveries still "
                                                "under way), done (every delivery ended) or cancelled"})


class CommandResultSchema(CommandOutSchema):
    replayed = fields.Bool(metadata={"description": "True when an earlier command with the same "
                                                    "idempotency key is answered again"})


class DeliveryDeviceSchema(Schema):
    name = fields.Str()
    address = fields.Str()
    vendor = fields.Str()
    kind = fields.Str()
    area_code = fields.Str(metadata={"description": "The device's own area (a commune, or a village in one)"})
    area_name = fields.Str(allow_none=True)


class CommuneSchema(Schema):
    code = fields.Str()
    name = fields.Str()


class DeliverySchema(Schema):
    command_id = fields.Str()
    device_id = fields.Str()
    device = fields.Nested(DeliveryDeviceSchema, allow_none=True, metadata={
        "description": "The device as it is registered now; null when it was removed since"})
    commune = fields.Nested(CommuneSchema, allow_none=True, metadata={
        "description": "The commune the device stands in (its area, or the commune above its village)"})
    vendor = fields.Str()
    state = fields.Str(validate=validate.OneOf(DELIVERY_STATES))
    reason = fields.Str(allow_none=True)
    attempts = fields.Int()
    queued_at = fields.AwareDateTime()
    sent_at = fields.AwareDateTime(allow_none=True)
    finished_at = fields.AwareDateTime(allow_none=True)
    result = fields.Dict(allow_none=True)


class DeviceDeliverySchema(DeliverySchema):
    verb = fields.Str()
    priority = fields.Str(metadata={"description": "The command's class"})
    issuer = fields.Str()
    start_at = fields.AwareDateTime(allow_none=True)


class StatusChangeSchema(Schema):
    state = fields.Str(metadata={"description": "online, degraded, offline or unknown"})
    previous = fields.Str()
    reason = fields.Str(allow_none=True)


class HistoryEntrySchema(Schema):
    kind = fields.Str(metadata={"description": "status (an operating-state transition) or delivery"})
    at = fields.AwareDateTime(metadata={"description": "When the state changed, or when the delivery was queued"})
    status = fields.Nested(StatusChangeSchema, metadata={"description": "For kind status"})
    delivery = fields.Nested(DeviceDeliverySchema, metadata={"description": "For kind delivery"})


class PluginSchema(Schema):
    name = fields.Str()
    group = fields.Str()
    distribution = fields.Str()
    version = fields.Str()
    loaded = fields.Bool(metadata={"description": "False: found but skipped (see problems)"})
    vendors = fields.List(fields.Dict(), metadata={"description": "Manifests of the vendor adapters it registers"})
    sources = fields.List(fields.Dict(), metadata={"description": "Manifests of its content sources (hub.source)"})
    outputs = fields.List(fields.Dict(), metadata={"description": "Manifests of its outputs (hub.output)"})
    speech_providers = fields.List(fields.Dict(), metadata={"description": "Manifests of its speech providers"})
    media_stores = fields.List(fields.Dict(), metadata={"description": "Manifests of its media stores"})
    problems = fields.List(fields.Str(), metadata={"description": "What was refused: import error, a class "
                                                                  "breaking its contract, a name already taken"})


class CapabilitiesSchema(Schema):
    version = fields.Str()
    capabilities = fields.Dict(keys=fields.Str(), values=fields.Str())
    device_kinds = fields.List(fields.Str())
    priorities = fields.List(fields.Str())
    verbs = fields.Dict(keys=fields.Str(), values=fields.List(fields.Str()),
                        metadata={"description": "Capabilities each verb needs"})


class CheckSchema(Schema):
    ok = fields.Bool()
    error = fields.Str()


class DeviceCountsSchema(Schema):
    total = fields.Int()
    online = fields.Int()
    offline = fields.Int()


class HealthSchema(Schema):
    status = fields.Str(metadata={"description": "ok or degraded"})
    version = fields.Str()
    database = fields.Nested(CheckSchema)
    redis = fields.Nested(CheckSchema)
    devices = fields.Nested(DeviceCountsSchema)


class SpeakSchema(Schema):
    force = fields.Bool(load_default=False, metadata={
        "description": "Synthesise again even if audio of this text is stored (e.g. the preferred provider is back)"})
