"""Snapserver client objects -> the hub's DeviceStatus dicts."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from marshmallow import ValidationError

from hub.schemas.status import DeviceStatusSchema
from hub.vendor import StatusParseError

SNAPCAST_URI = "snapcast:"


class Routing:
    """How the configured roles and relays name snapserver's streams."""

    def __init__(self, streams: dict[str, str], relay_streams: dict[str, str]) -> None:
        self.streams = dict(streams)
        self.relay_streams = dict(relay_streams)
        self.idle = streams.get("idle")
        self.role_of: dict[str, str] = {}
        for role, sid in streams.items():
            self.role_of.setdefault(sid, role)
        self.url_of = {sid: url for url, sid in relay_streams.items()}

    def target(self, uri: str) -> tuple[str, str | None] | str:
        """(stream id, relayed URL or None) for a content URI or relay URL, or why it has none."""
        if uri.startswith(SNAPCAST_URI):
            role = uri[len(SNAPCAST_URI):].lstrip("/")
            if role in self.streams:
                return self.streams[role], None
            return (f"no snapserver stream has the role {role!r} "
                    f"(configured roles: {', '.join(sorted(self.streams))})")
        if uri in self.relay_streams:
            return self.relay_streams[uri], uri
        return (f"relaying {uri} is not allowed: no snapserver stream carries it "
                f"(add it to relay_streams; snapserver 0.26 cannot be told to fetch a URL)")

    def source(self, stream_id: str) -> str:
        if stream_id in self.url_of:
            return self.url_of[stream_id]
        return f"{SNAPCAST_URI}{self.role_of.get(stream_id, stream_id)}"


def _fail(address: str, why: str) -> StatusParseError:
    return StatusParseError(f"status of snapclient {address}: {why}")


def _when(last_seen: Any) -> datetime | None:
    if not isinstance(last_seen, dict):
        return None
    sec, usec = last_seen.get("sec"), last_seen.get("usec", 0)
    if isinstance(sec, bool) or not isinstance(sec, int) or sec <= 0 or not isinstance(usec, int):
        return None
    return datetime.fromtimestamp(sec + usec / 1e6, tz=timezone.utc)


def client_status(address: str, client: Any, group: dict[str, Any] | None = None,
                  stream: dict[str, Any] | None = None, routing: Routing | None = None,
                  now: datetime | None = None) -> dict[str, Any]:
    """A DeviceStatusSchema-valid dict from one snapserver client object, with its group and
    the group's stream when known (they decide activity and source), or StatusParseError."""
    if not isinstance(client, dict):
        raise _fail(address, f"a client must be a JSON object, not {type(client).__name__}")
    if client.get("id") != address:
        raise _fail(address, f"it describes client {client.get('id')!r}")
    connected = client.get("connected")
    if not isinstance(connected, bool):
        raise _fail(address, "connected must be true or false")
    config = client.get("config")
    volume = config.get("volume") if isinstance(config, dict) else None
    if not isinstance(volume, dict):
        raise _fail(address, "config.volume must be an object")
    percent, muted = volume.get("percent"), volume.get("muted", False)
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise _fail(address, "config.volume.percent must be an integer 0-100")
    if not isinstance(muted, bool):
        raise _fail(address, "config.volume.muted must be true or false")
    snapclient = client.get("snapclient")
    version = snapclient.get("version") if isinstance(snapclient, dict) else None
    now = now or datetime.now(timezone.utc)
    # snapserver vouches for a connected client right now; for a gone one, lastSeen is when.
    reported_at = now if connected else (_when(client.get("lastSeen")) or now)

    activity, source = "unknown", None
    if connected and group is not None:
        stream_id = group.get("stream_id")
        if muted or group.get("muted") or not stream_id or (routing and stream_id == routing.idle):
            activity = "idle"
        else:
            source = routing.source(stream_id) if routing else f"{SNAPCAST_URI}{stream_id}"
            relayed = routing is not None and stream_id in routing.url_of
            # Tuned to a stream that carries no audio right now (nobody writes its pipe): the
            # speaker is silent, and saying "playing" would mislead the operator.
            audible = stream is not None and stream.get("status") == "playing"
            activity = ("relaying" if relayed else "playing") if audible else "idle"
    elif connected and muted:
        activity = "idle"

    data: dict[str, Any] = {"online": connected, "activity": activity, "source": source, "volume": percent,
                            "firmware": version if isinstance(version, str) and version else None,
                            "reported_at": reported_at.isoformat()}
    try:
        return DeviceStatusSchema().load(data)
    except ValidationError as err:
        raise _fail(address, str(err.messages)) from None


def parse_status(address: str, payload: bytes) -> dict[str, Any]:
    """One client object of Server.GetStatus, as JSON bytes -> DeviceStatus dict."""
    try:
        client = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _fail(address, f"not JSON: {exc}") from None
    return client_status(address, client)
