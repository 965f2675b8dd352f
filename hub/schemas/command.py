"""One operator instruction, sent to every device its target selects."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from hub.capabilities import PRIORITIES, VERBS
from hub.schemas.fields import Instant, LedText, TextSchema
from hub.schemas.target import TargetSchema

_STREAM_URL = validate.Regexp(r"^(https?|rtsp|rtmp|icecast|srt)://\S+$",
                              error="must be an http(s), rtsp, rtmp, icecast or srt URL")


class PlayParams(Schema):
    repeat = fields.Int(load_default=1, validate=validate.Range(min=1, max=20))
    volume = fields.Int(validate=validate.Range(min=0, max=100),
                        metadata={"description": "Volume for this bulletin only"})


class EmptyParams(Schema):
    pass


class VolumeParams(Schema):
    level = fields.Int(required=True, validate=validate.Range(min=0, max=100),
                       metadata={"description": "0–100; plugins map it to the vendor's scale"})


class RelayParams(Schema):
    url = fields.Str(validate=_STREAM_URL, metadata={"description": "Stream to relay, unless content_id names one"})


class LedShowParams(Schema):
    text = LedText(validate=validate.Length(min=1, max=2000), metadata={"description": (
        "Text to show, unless content_id names led content. NFC-normalised; control characters (line breaks "
        "too), bidirectional overrides and zero-width characters are refused")})
    effect = fields.Str(load_default="scroll", validate=validate.OneOf(["static", "scroll", "blink"]))
    duration_s = fields.Int(validate=validate.Range(min=1, max=86400))


class BrightnessParams(Schema):
    level = fields.Int(required=True, validate=validate.Range(min=0, max=100))


class PowerParams(Schema):
    on = fields.Bool(required=True)


class ScheduleSlot(Schema):
    content_id = fields.Str(required=True)
    start = Instant(required=True)
    repeat = fields.Int(load_default=1, validate=validate.Range(min=1, max=20))


class ScheduleParams(Schema):
    slots = fields.List(fields.Nested(ScheduleSlot), required=True, validate=validate.Length(max=500))


VERB_PARAMS: dict[str, type[Schema]] = {
    "play": PlayParams,
    "stop": EmptyParams,
    "set_volume": VolumeParams,
    "relay_start": RelayParams,
    "relay_stop": EmptyParams,
    "led_show": LedShowParams,
    "led_clear": EmptyParams,
    "set_brightness": BrightnessParams,
    "power": PowerParams,
    "sync_schedule": ScheduleParams,
}

# Verbs that carry content; play cannot do without it.
NEEDS_CONTENT = {"play"}


class CommandSchema(TextSchema):
    id = fields.Str(dump_only=True)
    verb = fields.Str(required=True, validate=validate.OneOf(VERBS))
    params = fields.Dict(keys=fields.Str(), load_default=dict,
                         metadata={"description": "Validated per verb; see the verb's params schema"})
    content_id = fields.Str(allow_none=True, validate=validate.Length(min=1, max=64))
    priority = fields.Str(validate=validate.OneOf(PRIORITIES),
                          metadata={"description": "Defaults to the content's class, else normal"})
    start_at = Instant(metadata={"description": (
        "When to start (scheduled command, circular 39/2020's normal bulletins). Absent, or less than "
        "1 s ago: at once. Until then every delivery is `scheduled`; the hub publishes at this instant. "
        "Any priority class may be scheduled (an emergency drill at 09:00); immediate commands never "
        "supersede a scheduled one that has not started")})
    expires_at = Instant(metadata={"description": (
        "Deliveries not acked by then end `expired`. Default: start_at (or now) plus the hub's default "
        "TTL; must be after start_at and at most the hub's max_command_ttl_s (default one day) after "
        "the start")})
    idempotency_key = fields.Str(validate=validate.Length(min=1, max=200))
    issuer = fields.Str(dump_only=True)
    target = fields.Nested(TargetSchema, required=True)
    created_at = fields.AwareDateTime(dump_only=True)

    @validates_schema
    def _expires_after_start(self, data: dict[str, Any], **_: Any) -> None:
        # Checks against the clock (start_at in the past, too far ahead) live in hub.delivery.dispatch,
        # which knows the hub's settings; this one needs only the two values.
        start, expires = data.get("start_at"), data.get("expires_at")
        if start is not None and expires is not None and expires <= start:
            raise ValidationError(f"must be after start_at ({start.isoformat()})", field_name="expires_at")

    @validates_schema
    def _params_fit_verb(self, data: dict[str, Any], **_: Any) -> None:
        verb = data.get("verb")
        if verb not in VERB_PARAMS:
            return  # the verb field has already been reported
        try:
            data["params"] = VERB_PARAMS[verb]().load(data.get("params") or {})
        except ValidationError as err:
            raise ValidationError({"params": err.messages}) from err
        if verb in NEEDS_CONTENT and not data.get("content_id"):
            raise ValidationError(f"{verb} needs content_id", field_name="content_id")
        if verb == "relay_start" and not (data["params"].get("url") or data.get("content_id")):
            raise ValidationError("relay_start needs params.url or a stream content_id", field_name="params")
        if verb == "led_show" and not (data["params"].get("text") or data.get("content_id")):
            raise ValidationError("led_show needs params.text or a led content_id", field_name="params")
