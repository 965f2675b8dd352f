"""A bulletin: what is played or shown, independent of where it goes."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from hub.capabilities import DEFAULT_PRIORITY, PRIORITIES
from hub.media import MediaError, check_key
from hub.schemas.fields import Instant, TextSchema
from hub.text import led_text_problem, nfc

CONTENT_KINDS = ("audio_file", "tts_text", "stream", "led_text", "led_image")
# Which field each kind cannot do without.
_KIND_NEEDS = {
    "audio_file": "media",
    "tts_text": "body",
    "stream": "media",
    "led_text": "body",
    "led_image": "media",
}


class MediaSchema(Schema):
    uri = fields.Str(validate=validate.Length(min=1, max=2000),
                     metadata={"description": "Where devices fetch the media (http, https, rtsp, icecast…)"})
    key = fields.Str(validate=validate.Length(min=1, max=255),
                     metadata={"description": "A key of the hub's media store (POST /api/media answers it): "
                                              "devices get a signed URL, valid while the command is"})
    sha256 = fields.Str(validate=validate.Regexp(r"^[0-9a-f]{64}$", error="must be 64 lowercase hex digits"),
                        metadata={"description": "Digest devices verify after download"})
    duration_s = fields.Float(validate=validate.Range(min=0, max=86400),
                              metadata={"description": "Length in seconds; absent for live streams"})
    mime = fields.Str(validate=validate.Length(max=100))

    @validates_schema
    def _uri_or_key(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("uri") and data.get("key"):
            raise ValidationError("give uri (media elsewhere) or key (media in the hub's store), not both",
                                  field_name="key")
        if not data.get("uri") and not data.get("key"):
            raise ValidationError("Missing data for required field: give uri, or key of uploaded media",
                                  field_name="uri")
        if data.get("key"):
            try:
                check_key(data["key"])
            except MediaError as exc:
                raise ValidationError(str(exc), field_name="key") from None


class OriginSchema(Schema):
    source = fields.Str(required=True, validate=validate.Length(min=1, max=100),
                        metadata={"description": "Source plugin id (national system, RSS feed, operator…)"})
    external_id = fields.Str(validate=validate.Length(max=500))


class ContentSchema(TextSchema):
    id = fields.Str(dump_only=True)
    title = fields.Str(required=True, validate=validate.Length(min=1, max=300))
    kind = fields.Str(required=True, validate=validate.OneOf(CONTENT_KINDS))
    language = fields.Str(load_default="vi", validate=validate.Regexp(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
                                                                      error="must be a BCP 47 tag such as vi or en-US"))
    body = fields.Str(validate=validate.Length(max=100_000),
                      metadata={"description": "Text to speak (tts_text) or to show (led_text)"})
    media = fields.Nested(MediaSchema)
    category = fields.Str(validate=validate.Length(max=100))
    origin = fields.Nested(OriginSchema)
    priority = fields.Str(load_default=DEFAULT_PRIORITY, validate=validate.OneOf(PRIORITIES),
                          metadata={"description": "Bulletin class of circular 39/2020/TT-BTTTT"})
    valid_from = Instant()
    valid_until = Instant()
    created_at = fields.AwareDateTime(dump_only=True)
    area_code = fields.Str(allow_none=True, validate=validate.Length(min=1, max=64), metadata={
        "description": "The area it belongs to: who may edit, approve and publish it. Required unless the "
                       "author's account is for every area"})

    @validates_schema
    def _kind_has_what_it_needs(self, data: dict[str, Any], **_: Any) -> None:
        kind = data.get("kind")
        need = _KIND_NEEDS.get(kind or "")
        if need and not data.get(need):
            raise ValidationError(f"content of kind {kind} needs {need}", field_name=need)
        if kind == "led_text" and data.get("body"):  # shown on boards: the LED rule of hub.text
            problem = led_text_problem(data["body"])
            if problem:
                raise ValidationError(problem, field_name="body")
            data["body"] = nfc(data["body"])
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and end <= start:
            raise ValidationError("must be later than valid_from", field_name="valid_until")
