"""What a placeholder can name, and its value for one command to one device."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from marshmallow import fields, validate

from hub.schemas.command import VERB_PARAMS
from hub.text import for_board
from hub.vendor import DeviceRef, Envelope

from hub_profiles.template import Missing
from hub_profiles.values import ValueSpec

CONTENT_KEYS = {"id": "text", "kind": "text", "title": "text", "body": "text", "language": "text",
                "media_uri": "text", "sha256": "text", "duration_s": "number"}
COMMON = {"command_id": "text", "verb": "text", "priority": "text", "address": "text", "expires_at": "text"}
# Names a listener can fill from a topic alone: it subscribes with wildcards and has no command.
LISTEN_NAMES = ("prefix", "address")


@dataclass(frozen=True)
class Known:
    """What validation knows about a placeholder: its kind and, when the hub bounds it, its
    range or choices."""

    kind: str  # number | bool | text | any
    lo: float | None = None
    hi: float | None = None
    choices: tuple[Any, ...] | None = None


def _param_known(f: fields.Field) -> Known:
    if isinstance(f, fields.Boolean):
        return Known("bool", choices=(True, False))
    kind = "number" if isinstance(f, fields.Number) else "text" if isinstance(f, fields.String) else "any"
    lo = hi = None
    choices = None
    for v in f.validators:
        if isinstance(v, validate.Range):
            lo, hi = v.min, v.max
        elif isinstance(v, validate.OneOf):
            choices = tuple(v.choices)
    return Known(kind, lo, hi, choices)


def known_names(verb: str, driver: str) -> dict[str, Known]:
    """Every placeholder a command for `verb` may use (named values come on top)."""
    out = {name: Known(kind) for name, kind in COMMON.items()}
    if driver == "mqtt":
        out["prefix"] = Known("text")
    for name, f in VERB_PARAMS[verb]().fields.items():
        out[f"params.{name}"] = _param_known(f)
    for name, kind in CONTENT_KEYS.items():
        out[f"content.{name}"] = Known(kind)
    if verb == "led_show":
        out["text"] = Known("text")
    if verb in ("play", "relay_start"):
        out["url"] = Known("text")
    return out


def expired_reason(env: Envelope, now: datetime | None = None) -> str | None:
    """Why `env` must not be carried out any more, or None while it is still valid.

    Neither a relay's MQTT topic nor a Modbus register carries an expiry, so the device could
    never tell that a bulletin is stale: the driver is the last place that can refuse it."""
    now = now or datetime.now(timezone.utc)
    expires = env.expires_at if env.expires_at.tzinfo else env.expires_at.replace(tzinfo=timezone.utc)
    if expires > now:
        return None
    at = expires.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return f"expired: the {env.verb} command expired at {at}, not carried out"


class RenderContext:
    """Resolves placeholders for one envelope sent to one device. Named values (`values:`) are
    computed on first use."""

    def __init__(self, env: Envelope, device: DeviceRef, *, values: Mapping[str, ValueSpec],
                 prefix: str | None = None, unicode_text: bool = True) -> None:
        self.env = env
        self.device = device
        self.values = values
        self.prefix = prefix
        self.unicode_text = unicode_text
        self._computed: dict[str, Any] = {}

    def __call__(self, name: str) -> Any:
        if name in self.values:
            if name not in self._computed:
                self._computed[name] = self.values[name].evaluate(self.base)
            return self._computed[name]
        return self.base(name)

    def base(self, name: str) -> Any:
        env = self.env
        if name == "command_id":
            return env.command_id
        if name == "verb":
            return env.verb
        if name == "priority":
            return env.priority
        if name == "address":
            return self.device.address
        if name == "prefix":
            if not self.prefix:
                raise Missing(name, "no topic prefix is configured")
            return self.prefix
        if name == "expires_at":
            return env.expires_at.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if name.startswith("params."):
            key = name.split(".", 1)[1]
            if env.params.get(key) is None:
                raise Missing(name, f"the {env.verb} command carries no {name}")
            return env.params[key]
        if name.startswith("content."):
            key = name.split(".", 1)[1]
            if not env.content or env.content.get(key) is None:
                raise Missing(name, f"the {env.verb} command carries no {name}")
            return env.content[key]
        if name == "text":
            text = env.params.get("text") or (env.content or {}).get("body")
            if not text:
                raise Missing(name, "led_show carries neither params.text nor a content body")
            return for_board(text, self.unicode_text)
        if name == "url":
            url = env.params.get("url") or (env.content or {}).get("media_uri")
            if not url:
                raise Missing(name, f"the {env.verb} command carries no URL")
            return url
        raise Missing(name, f"unknown placeholder {{{name}}}")
