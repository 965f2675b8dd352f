"""Hub commands -> gateway packets: which packet type a verb becomes and what its data holds."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hub.units import to_vendor_scale
from hub.vendor import Envelope

from hub_http_gateway.protocol import VOLUME_MAX, VOLUME_MIN, PacketType


class UnsupportedCommand(ValueError):
    """The gateway cannot carry this command; retrying will not change that."""


@dataclass(frozen=True)
class Packet:
    packet_type: PacketType
    data: dict[str, Any]


def volume_to_gateway(level: int) -> int:
    """The hub's 0–100 as the gateway's 1–10, rounding half up (70 -> 7, 75 -> 8, 0 -> 1)."""
    return to_vendor_scale(level, VOLUME_MIN, VOLUME_MAX)


def _media_uri(env: Envelope) -> str | None:
    return (env.content or {}).get("media_uri") or None


def packet_for(env: Envelope) -> Packet:
    verb, params = env.verb, env.params or {}
    if verb == "play":
        uri = _media_uri(env)
        if not uri:
            cid = (env.content or {}).get("id")
            raise UnsupportedCommand(f"content {cid} has no media URI; the gateway plays URLs only "
                                     "(synthesise tts_text to a file first)")
        if (env.content or {}).get("kind") == "stream":
            return Packet(PacketType.RELAY_START, {"url": uri})
        data: dict[str, Any] = {"url": uri, "repeat": int(params.get("repeat", 1)),
                                "content_id": (env.content or {}).get("id"),
                                "title": (env.content or {}).get("title")}
        if params.get("volume") is not None:
            data["volume"] = volume_to_gateway(int(params["volume"]))
        duration = (env.content or {}).get("duration_s")
        if isinstance(duration, (int, float)) and math.isfinite(duration):
            data["duration_s"] = duration
        return Packet(PacketType.PLAY_NOW, data)
    if verb == "stop":
        return Packet(PacketType.STOP, {})
    if verb == "set_volume":
        return Packet(PacketType.VOLUME, {"volume": volume_to_gateway(int(params["level"]))})
    if verb == "relay_start":
        url = params.get("url") or _media_uri(env)
        if not url:
            raise UnsupportedCommand("relay_start needs params.url or stream content with a media URI")
        return Packet(PacketType.RELAY_START, {"url": url})
    if verb == "relay_stop":
        return Packet(PacketType.RELAY_STOP, {})
    raise UnsupportedCommand(f"the http_gateway vendor cannot carry verb {verb}")


def expires_epoch(env: Envelope) -> int | None:
    # Rounded down: a gateway refusing a second early is better than one playing a second late.
    return int(env.expires_at.timestamp()) if env.expires_at is not None else None
