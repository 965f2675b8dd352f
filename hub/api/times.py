"""Times in API answers: ISO 8601 in the province's time zone (the `timezone` setting), with its
offset — `2026-12-05T14:30:00+07:00`, not the UTC the database keeps.

Commune officers read these times as they come; a UTC time is seven hours off their clock. The
instant is the same, so a client comparing instants is unaffected; what the hub is sent may carry
any offset (hub.schemas.fields.Instant loads it as UTC).

The one place answers are serialised is HubBlueprint.response (hub.api.common): it hands every
response schema to `localise`, which makes each datetime field of the schema (nested, listed or
as mapping values) render in the zone. Answers built without a schema go through
`HubJSONProvider`, which does the same for a datetime left in the data.
"""
from __future__ import annotations

from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import flask
import marshmallow as ma
from flask.json.provider import DefaultJSONProvider

ISO_FORMATS = (None, "iso", "iso8601")


@lru_cache(maxsize=8)
def zone(name: str) -> tzinfo:
    return ZoneInfo(name)


def local_zone() -> tzinfo | None:
    """The zone of the hub serving this request; None outside a hub request (times stay as they are)."""
    from hub.api.common import RUNTIME_KEY  # common imports this module

    if not flask.has_app_context():
        return None
    rt = flask.current_app.extensions.get(RUNTIME_KEY)
    return zone(rt.settings.timezone) if rt is not None else None


def in_local_time(value: datetime) -> str:
    """ISO 8601 of `value` in the zone of the hub serving the request, with the zone's offset."""
    tz = local_zone()
    if tz is not None and value.tzinfo is not None:
        value = value.astimezone(tz)
    return value.isoformat()


def localise(schema: ma.Schema) -> ma.Schema:
    """`schema` (an instance, changed in place and returned) with its datetime fields rendering in
    local time. The field instances are the schema's own copies (marshmallow copies declared
    fields per schema instance), so no other user of the schema class is affected."""
    for field in schema.fields.values():
        _localise_field(field)
    return schema


def _localise_field(field: ma.fields.Field | None) -> None:
    if field is None:
        return
    if isinstance(field, ma.fields.DateTime) and field.format in ISO_FORMATS:
        # an instance attribute: this field renders ISO through in_local_time, the class is untouched
        field.SERIALIZATION_FUNCS = {**field.SERIALIZATION_FUNCS,  # type: ignore[misc]
                                     "iso": in_local_time, "iso8601": in_local_time}
    elif isinstance(field, ma.fields.Nested):
        localise(field.schema)
    elif isinstance(field, ma.fields.List):
        _localise_field(field.inner)
    elif isinstance(field, ma.fields.Tuple):
        for inner in field.tuple_fields:
            _localise_field(inner)
    elif isinstance(field, ma.fields.Mapping):
        _localise_field(field.value_field)


class HubJSONProvider(DefaultJSONProvider):
    """Flask's JSON, but a datetime left in an answer is ISO 8601 in local time (Flask's default
    is an HTTP date in GMT), and Vietnamese stays readable."""

    ensure_ascii = False

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            return in_local_time(o)
        return DefaultJSONProvider.default(o)
