"""Request and answer bodies of the programmes API (hub.api.programmes). Times answered are local,
with their +07:00 offset (Asia/Ho_Chi_Minh), as an operator reads a schedule."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from hub.api.common import QueryArgs
from hub.broadcast.programmes import LOCAL_TZ
from hub.capabilities import PRIORITIES
from hub.schemas.fields import Instant, TextSchema
from hub.schemas.target import TargetSchema

_id = fields.Str(allow_none=True, validate=validate.Length(min=1, max=64))


class LocalTime(fields.DateTime):
    """An instant answered in local time with its offset (2025-06-02T06:00:00+07:00)."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else value.astimezone(LOCAL_TZ).isoformat()


class WhatWhereSchema(TextSchema):
    """What a programme plays (exactly one of content_id, playlist, stream_url) and where."""

    name = fields.Str(validate=validate.Length(min=1, max=200))
    target = fields.Nested(TargetSchema, required=True)
    content_id = _id
    playlist = fields.List(fields.Str(validate=validate.Length(min=1, max=64)), allow_none=True,
                           validate=validate.Length(min=1, max=100),
                           metadata={"description": "Published content ids played one after another"})
    stream_url = fields.Str(allow_none=True, validate=validate.Length(min=1, max=1000),
                            metadata={"description": "An http(s) stream the devices relay for the slot"})
    priority = fields.Str(validate=validate.OneOf([p for p in PRIORITIES if p != "emergency"],
                                                  error="must be one of: {choices} (an emergency goes out at once, "
                                                        "not by programme)"))
    valid_from = Instant(allow_none=True)
    valid_until = Instant(allow_none=True, metadata={"description": "Occurrences starting at or after it are not "
                                                                    "played"})


class _Overlap(ma.Schema):
    overlap = fields.Str(validate=validate.OneOf(["refuse", "keep"]), metadata={"description": (
        "What to do when a slot overlaps another programme's on a device: refuse (409 naming each), or keep "
        "with `precedence`")})
    precedence = fields.Int(allow_none=True, validate=validate.Range(min=0, max=1000), metadata={"description": (
        "With overlap keep: on a device both reach, the programme of the higher precedence plays")})


class ProgrammeSchema(WhatWhereSchema, _Overlap):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    ical = fields.Str(required=True, validate=validate.Length(min=1, max=200_000), metadata={"description": (
        "A VCALENDAR with the programme's VEVENT (RRULE, EXDATE, RDATE) and its moved occurrences "
        "(RECURRENCE-ID). A DTSTART without TZID is local time (Asia/Ho_Chi_Minh); DTEND or DURATION gives "
        "the slot's end")})


class ProgrammeChangesSchema(ProgrammeSchema):
    """An edit: any of the fields, loaded with partial=True."""


class ImportSchema(_Overlap):
    ics = fields.Str(required=True, validate=validate.Length(min=1, max=2_000_000),
                     metadata={"description": "An .ics text: one programme per event series (UID)"})
    common = fields.Nested(WhatWhereSchema, metadata={"description": "What plays and where, for every series"})
    per_uid = fields.Dict(keys=fields.Str(), values=fields.Nested(WhatWhereSchema), load_default=dict,
                          metadata={"description": "UID → what plays and where for that series (before common)"})


class ProgrammeOutSchema(ma.Schema):
    id = fields.Str()
    name = fields.Str()
    target = fields.Dict()
    content_id = fields.Str(allow_none=True)
    playlist = fields.List(fields.Str(), allow_none=True)
    stream_url = fields.Str(allow_none=True)
    priority = fields.Str()
    ical = fields.Str()
    valid_from = LocalTime(allow_none=True)
    valid_until = LocalTime(allow_none=True)
    area_code = fields.Str(allow_none=True)
    precedence = fields.Int(allow_none=True)
    revision = fields.Int()
    revised_at = LocalTime(allow_none=True)
    created_by = fields.Str()
    created_at = LocalTime()
    kept_overlaps = fields.List(fields.Str(), metadata={"description": "Overlaps kept by this save"})
    commands = fields.Dict(metadata={"description": "What this save made: created, cancelled, skipped devices"})


class RangeQuery(QueryArgs):
    start = Instant(data_key="from", metadata={"description": "Default: now"})
    end = Instant(data_key="to", metadata={"description": "Default: 7 days after from; at most 366 days after"})


class AreaQuery(QueryArgs):
    area = fields.Str(validate=validate.Length(min=1, max=64),
                      metadata={"description": "Only programmes playing in this area (in it, or holding it)"})


class OccurrenceSchema(ma.Schema):
    start = LocalTime()
    end = LocalTime()
    slot = LocalTime(metadata={"description": "The recurrence it stands for (differs from start when moved)"})
    moved = fields.Bool()
    key = fields.Str()


class ConflictSchema(ma.Schema):
    device_id = fields.Str()
    start = LocalTime()
    end = LocalTime()
    other_programme_id = fields.Str()
    other_start = LocalTime()
    other_end = LocalTime()
    text = fields.Str()


class ImportedSchema(ma.Schema):
    programmes = fields.List(fields.Nested(ProgrammeOutSchema))
