"""What the exchange schemas share: a base that refuses lone surrogates anywhere in the input,
bounded instants and LED text (the rules are hub.text's)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load

from hub.text import SURROGATE_MESSAGE, led_text_problem, nfc, surrogate_path

# No instant this hub deals in (a command, a bulletin's validity, an audit entry) lies outside
# these; a date beyond them is a typo or a probe, and near year 1 or 9999 converting it to UTC or
# adding a TTL overflows. Tighter, setting-driven horizons (how far ahead a command may start or
# expire) are checked where the settings are known: hub.delivery.dispatch and the API's contents.
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)


class Instant(fields.AwareDateTime):
    """An ISO 8601 instant with its UTC offset, loaded as UTC, between EARLIEST and LATEST."""

    default_error_messages = {
        "range": f"must lie between {EARLIEST.date().isoformat()} and {LATEST.date().isoformat()} (UTC)",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        when = super()._deserialize(value, attr, data, **kwargs)
        try:
            when = when.astimezone(timezone.utc)
        except (OverflowError, ValueError):  # 9999-12-31T23:00-05:00 has no UTC form
            raise self.make_error("range") from None
        if not EARLIEST <= when < LATEST:
            raise self.make_error("range")
        return when


class LedText(fields.Str):
    """Text for an LED board: refused when hub.text's LED rule refuses it, loaded NFC-normalised."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = led_text_problem(text)
        if problem:
            raise ValidationError(problem)
        return nfc(text)


class TextSchema(Schema):
    """Base of the exchange schemas: a lone surrogate anywhere in what is loaded — a key or a value,
    nested or not — is refused naming its path. The API refuses it earlier for every request
    body; this covers the other doors (device and area files, the command line, device status
    that plugins load)."""

    @pre_load
    def _no_lone_surrogates(self, data: Any, **_: Any) -> Any:
        where = surrogate_path(data)
        if where is not None:
            raise ValidationError(SURROGATE_MESSAGE, field_name=where or "_schema")
        return data
