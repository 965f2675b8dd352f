"""What a one-step emergency asks for (POST /api/emergency, `hub emergency`): hub.broadcast.emergency."""
from __future__ import annotations

from marshmallow import fields, validate

from hub.schemas.fields import Instant, TextSchema
from hub.schemas.target import TargetSchema


class EmergencySchema(TextSchema):
    text = fields.Str(validate=validate.Length(max=20_000), metadata={
        "description": "Words to speak (by the emergency voice) and to show on the boards"})
    title = fields.Str(validate=validate.Length(max=300), metadata={
        "description": "Title of the bulletin made from text or cap (default: its first words, the alert's headline)"})
    voice = fields.Str(validate=validate.Length(min=1, max=100), metadata={
        "description": "A voice of the emergency speech provider (e.g. vi-vn-x-south)"})
    content_id = fields.Str(validate=validate.Length(min=1, max=64), metadata={
        "description": "A published content to send instead of text"})
    cap = fields.Str(validate=validate.Length(min=1, max=1_000_000), metadata={
        "description": "A CAP 1.2 alert (XML text): its headline, description and instruction, its areas and "
                       "polygons (the target when none is given) and its expiry"})
    target = fields.Nested(TargetSchema, metadata={
        "description": "Areas, groups, devices or a geometry; speakers get the audio, boards the text. Required "
                       "unless cap names the areas"})
    expires_at = Instant(metadata={"description": "When the emergency ends for devices that have not played it "
                                                  "(default: default_ttl_s from now; a CAP alert's own expiry)"})
    idempotency_key = fields.Str(validate=validate.Length(min=1, max=200), metadata={
        "description": "A repeated request with the same key answers the first emergency instead of firing twice"})
