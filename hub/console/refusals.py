"""A refused command told as a sentence in the reader's language, with the hub's own words kept as
the technical detail (what an administrator or a log search needs).

The hub's refusals (hub.delivery.dispatch.DispatchError, the schemas' ValidationError) name a field
and a rule in English for programs; a commune officer reads the sentence chosen here by that field,
status and rule, never the English alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from marshmallow import ValidationError

from hub.delivery.dispatch import DispatchError


@dataclass
class Refusal:
    sentence: str  # in the reader's language
    detail: str  # the hub's words, for whoever investigates


def _field_sentence(field: str) -> str:
    """What to tell about a refused field of the command form."""
    top = field.split(".", 1)[0]
    if field.startswith("target"):
        return _("Choose at least one area, group or device to send to.")
    if field in ("params.level",):
        return _("The level must be a whole number from 0 to 100.")
    if field == "params.volume":
        return _("The volume must be a whole number from 0 to 100.")
    if field == "params.repeat":
        return _("The number of repeats must be from 1 to 20.")
    if field == "params.text" or field == "params":
        return _("The text for the boards is missing or holds characters a board cannot show (line breaks, "
                 "control or invisible characters), or is longer than 2000 characters.")
    if field == "params.url":
        return _("The stream address must be an http(s), rtsp, rtmp, icecast or srt address.")
    if field == "params.duration_s":
        return _("The display time must be from 1 second to 24 hours.")
    if field == "params.on":
        return _("Choose whether to switch the devices on or off.")
    if top == "content_id":
        return _("Choose a published bulletin to play.")
    if top in ("start_at", "expires_at"):
        return _("The start or end time is not acceptable: it lies in the past, too far ahead, or the end "
                 "comes before the start.")
    if top == "verb":
        return _("Choose what the devices should do.")
    if top == "priority":
        return _("Choose a priority class: normal, priority or emergency.")
    return _("A value of the form is not acceptable (%(field)s).", field=field)


def _flatten(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    """marshmallow's nested {field: [message]} as (dotted field, message) pairs."""
    if isinstance(messages, dict):
        out: list[tuple[str, str]] = []
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                name = prefix or "_schema"
            out.extend(_flatten(value, name))
        return out
    if isinstance(messages, (list, tuple)):
        return [pair for m in messages for pair in _flatten(m, prefix)]
    return [(prefix, str(messages))]


def from_validation(err: ValidationError) -> list[Refusal]:
    seen: dict[str, Refusal] = {}
    for field, message in _flatten(err.messages):
        sentence = _field_sentence(field)
        if sentence in seen:
            seen[sentence].detail += f"; {field}: {message}"
        else:
            seen[sentence] = Refusal(sentence, f"{field}: {message}")
    return list(seen.values())


def from_dispatch(exc: DispatchError) -> Refusal:
    detail = str(exc)
    if exc.status == 403 and exc.field == "target":
        return Refusal(_("The command was refused: what you selected reaches devices or areas outside your own "
                         "areas. Nothing was sent."), detail)
    if exc.status == 403:
        return Refusal(_("The command was refused: your account may not send commands (it needs the operator "
                         "or administrator role). Nothing was sent."), detail)
    if exc.rule == "unpublished" or (exc.field == "content_id" and exc.status == 409):
        return Refusal(_("Only a published bulletin may be played; this one has not been approved and published "
                         "yet. Nothing was sent."), detail)
    if exc.field == "content_id":
        return Refusal(_("The bulletin chosen cannot be played (unknown or past its validity). Nothing was sent."),
                       detail)
    if exc.status == 409:
        return Refusal(_("The command conflicts with one sent before. Nothing was sent."), detail)
    if exc.field:
        return Refusal(_field_sentence(exc.field), detail)
    return Refusal(_("The hub refused the command. Nothing was sent."), detail)


__all__ = ["Refusal", "from_dispatch", "from_validation"]
