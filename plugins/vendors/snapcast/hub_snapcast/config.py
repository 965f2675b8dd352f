"""The adapter's settings, validated the way the hub validates every plugin's config."""
from __future__ import annotations

import re
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

# The hub's own rule for relay URLs (hub/schemas/command.py): a relay_streams key that does not
# match it could never be named by a relay_start, so it is refused here rather than ignored.
STREAM_URL = re.compile(r"^(https?|rtsp|rtmp|icecast|srt)://\S+$")
ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")
STREAM_ID = validate.Length(min=1, max=200)

DEFAULT_STREAMS = {"bulletin": "bulletin", "idle": "default"}


class SnapcastConfigSchema(Schema):
    class Meta:
        unknown = RAISE  # a misspelt key should fail loudly, not silently use a default

    host = fields.Str(load_default="127.0.0.1", metadata={"description": "snapserver host"})
    control_port = fields.Int(load_default=1705, validate=validate.Range(min=1, max=65535),
                              metadata={"description": "snapserver's JSON-RPC TCP port ([tcp] port)"})
    timeout_s = fields.Float(load_default=5.0, validate=validate.Range(min=0.1, max=120),
                             metadata={"description": "Connect timeout, and how long one request or batch "
                                                      "may wait for snapserver's answer"})
    streams = fields.Dict(keys=fields.Str(validate=validate.Regexp(ROLE, error="a role is a lower-case word")),
                          values=fields.Str(validate=STREAM_ID), load_default=lambda: dict(DEFAULT_STREAMS),
                          metadata={"description": "Hub stream role -> snapserver stream id. `idle` is where "
                                                   "stop and relay_stop send a group; content with media URI "
                                                   "`snapcast:<role>` plays that role's stream"})
    relay_streams = fields.Dict(keys=fields.Str(validate=validate.Regexp(STREAM_URL, error="must be a stream URL "
                                                                         "the hub accepts for relay_start")),
                                values=fields.Str(validate=STREAM_ID), load_default=dict,
                                metadata={"description": "The relays allowed: stream URL -> id of the snapserver "
                                                         "stream that carries it (a process:// or other source "
                                                         "configured on the snapserver host)"})
    poll_interval_s = fields.Float(load_default=30.0, validate=validate.Range(min=0.2, max=3600),
                                   metadata={"description": "How often the listener re-reads Server.GetStatus "
                                                            "and reports every client (the heartbeat)"})
    reconnect_max_s = fields.Float(load_default=10.0, validate=validate.Range(min=0.2, max=600),
                                   metadata={"description": "Longest pause between the listener's reconnect "
                                                            "attempts (it starts at 0.2 s and doubles)"})

    @validates("streams")
    def _has_idle(self, value: dict[str, str], **_: Any) -> None:
        if "idle" not in value:
            raise ValidationError("must name the idle stream (role `idle`), where stop sends a group")


def load_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """Validated settings, or ValueError naming the bad keys."""
    try:
        return SnapcastConfigSchema().load(dict(config or {}))
    except ValidationError as err:
        raise ValueError(f"snapcast config: {err.messages}") from None
