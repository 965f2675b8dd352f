"""Live broadcast and relay sessions as the API and the command line see them: the desired state.

A session is one Icecast mount (`/relay-<id>`) with its own source credentials, whose listeners
fall back to the hub's fallback mount while its source is missing or silent (Icecast's
`fallback-override` brings them back when it returns). Its source is a station of the stations
file (ffmpeg pulls it), a published content's audio (played once, in real time) or an operator's
live source client (the answer gives the source URL and credentials).

Starting one writes the session (desired `running`) and dispatches `relay_start` with the mount's
listen URL to the target; stopping one dispatches `relay_stop` and marks it desired `stopped`.
`hub relays run` (hub.broadcast.relay.service) owns Icecast and the ffmpeg sources and reconciles
them with these rows, so the API stays stateless and a restarted service resumes every session.
Both go through hub.delivery.dispatch.submit, which checks the caller's role and areas.

The mount's source password is derived from the installation's secret key and the session id,
never stored: the service and the API compute the same one, and the database holds no secret.
"""
from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.access import audit
from hub.access.actors import Actor
from hub.access.secret_key import session_secret
from hub.broadcast.relay.stations import Station, StationError, load_stations
from hub.capabilities import DEFAULT_PRIORITY
from hub.config import Settings
from hub.delivery.dispatch import DispatchError, Submitted, submit
from hub.fleet.areas import AreaError, subtree_paths
from hub.runtime import Runtime
from hub.schemas.command import CommandSchema
from hub.store.content_tables import ContentStatus
from hub.store.db import utcnow
from hub.store.models import Content
from hub.store.relay_tables import RelayEvent, RelaySession

KINDS = ("station", "content", "live")
STATES = ("starting", "on_air", "fallback", "ended", "stopping", "stopped", "error")
FALLBACK_MOUNT = "/hub-fallback"
SOURCE_USER = "source"


def public_base(settings: Settings) -> str:
    return settings.icecast_public_url.rstrip("/") or f"http://{settings.icecast_host}:{settings.icecast_port}"


def listen_url(settings: Settings, mount: str) -> str:
    """What devices fetch: the mount at Icecast's public address."""
    return public_base(settings) + mount


def source_password(settings: Settings, session_id: str) -> str:
    key = session_secret(settings).encode("utf-8")
    return hmac.new(key, f"hub relay source\n{session_id}".encode(), hashlib.sha256).hexdigest()[:32]


def live_source(settings: Settings, row: RelaySession) -> dict[str, str]:
    """Where an operator's source client (ffmpeg, a browser's recording through the hub) sends."""
    netloc = urlsplit(public_base(settings)).netloc
    password = source_password(settings, row.id)
    return {"url": f"icecast://{SOURCE_USER}:{password}@{netloc}{row.mount}", "user": SOURCE_USER,
            "password": password, "mount": row.mount, "content_type": "audio/mpeg",
            "example": f"ffmpeg -re -i INPUT -c:a libmp3lame -b:a {settings.relay_bitrate_kbps}k "
                       f"-content_type audio/mpeg -f mp3 icecast://{SOURCE_USER}:{password}@{netloc}{row.mount}"}


def offered_stations(session: Session, settings: Settings, actor: Actor) -> list[Station]:
    """The stations `actor` may relay, in file order (StationError when the file is broken)."""
    stations = load_stations(settings)
    paths = actor.area_paths(session)
    out = []
    for station in stations.values():
        known = dict(session.execute(select_paths(station.areas)).all()) if station.areas else {}
        if station.offered_to(paths, list(known.values())):
            out.append(station)
    return out


def select_paths(codes: tuple[str, ...]) -> Any:
    from hub.store.models import Area

    return select(Area.code, Area.path).where(Area.code.in_(codes))


def _station(rt: Runtime, session: Session, actor: Actor, station_id: str) -> Station:
    try:
        offered = {s.id: s for s in offered_stations(session, rt.settings, actor)}
    except StationError as exc:
        raise DispatchError(None, f"the stations file cannot be read: {exc}", status=409) from None
    if station_id not in offered:
        raise DispatchError("station_id", f"unknown station {station_id} (GET /api/stations lists those offered "
                                          f"to you)")
    return offered[station_id]


def _content(session: Session, content_id: str, now: datetime) -> Content:
    content = session.get(Content, content_id)
    if content is None:
        raise DispatchError("content_id", f"unknown content {content_id}")
    if content.status is not None and content.status != ContentStatus.PUBLISHED:
        raise DispatchError("content_id", f"content {content_id} is {content.status}; only a published content "
                                          "may go on air", status=409, rule="unpublished")
    if content.valid_until and content.valid_until <= now:
        raise DispatchError("content_id", f"content {content_id} expired at {content.valid_until.isoformat()}")
    if not (content.media or {}).get("key"):
        raise DispatchError("content_id", f"content {content_id} has no audio in the media store to broadcast")
    return content


def start_session(rt: Runtime, actor: Actor, data: dict[str, Any]) -> tuple[RelaySession, Submitted]:
    """Start a session from `data` ({station_id | content_id | live: true, target, priority,
    expires_at}); DispatchError (422/403/409 naming the field) when it cannot be."""
    chosen = [k for k in ("station_id", "content_id") if data.get(k)] + (["live"] if data.get("live") else [])
    if len(chosen) != 1:
        raise DispatchError("station_id", "name exactly one source: station_id, content_id or live: true")
    kind = {"station_id": "station", "content_id": "content", "live": "live"}[chosen[0]]
    now = utcnow()
    station = None
    with rt.db.session() as s:
        if kind == "station":
            station = _station(rt, s, actor, str(data["station_id"]))
        elif kind == "content":
            _content(s, str(data["content_id"]), now)
    sid = uuid.uuid4().hex
    mount = f"/relay-{sid[:16]}"
    command: dict[str, Any] = {"verb": "relay_start", "params": {"url": listen_url(rt.settings, mount)},
                               "target": data.get("target"), "priority": data.get("priority") or DEFAULT_PRIORITY}
    if data.get("expires_at"):
        command["expires_at"] = data["expires_at"]
    try:
        loaded = CommandSchema().load(command)
    except ValidationError as err:
        field, messages = next(iter(err.normalized_messages().items()))
        raise DispatchError(field, "; ".join(_flat({field: messages}))) from None
    sub = submit(rt, actor, loaded)  # the caller's role and areas are checked here, before anything is kept
    with rt.db.session() as s:
        row = RelaySession(id=sid, kind=kind, station_id=station.id if station else None,
                           station_url=station.url if station else None,
                           content_id=str(data["content_id"]) if kind == "content" else None, mount=mount,
                           target=sub.command.target, priority=sub.command.priority, desired="running",
                           state="starting", start_command_id=sub.command.id, created_by=actor.name,
                           created_by_id=actor.user_id, created_at=now, updated_at=now)
        s.add(row)
        audit.record(s, actor, "relay.start", "relay", sid,
                     {"kind": kind, "station_id": row.station_id, "content_id": row.content_id, "mount": mount,
                      "command_id": sub.command.id}, areas=_areas(s, sub.command.target))
        s.flush()
        s.expunge(row)
    return row, sub


def stop_session(rt: Runtime, actor: Actor, session_id: str) -> tuple[RelaySession, Submitted]:
    """Dispatch `relay_stop` to the session's target and mark it to be taken off air. Needs the
    rights to send to that target (403 otherwise); a session already stopped is a conflict (409)."""
    with rt.db.session() as s:
        row = s.get(RelaySession, session_id)
        if row is None:
            raise DispatchError("id", f"unknown relay {session_id}", status=404)
        if row.desired == "stopped":
            raise DispatchError("id", f"relay {session_id} was already stopped by {row.stopped_by}", status=409)
        target, priority = row.target, row.priority
    loaded = CommandSchema().load({"verb": "relay_stop", "target": target, "priority": priority})
    sub = submit(rt, actor, loaded)
    with rt.db.session() as s:
        row = s.get(RelaySession, session_id)
        assert row is not None
        row.desired, row.stopped_by, row.stopped_at = "stopped", actor.name, utcnow()
        row.stop_command_id = sub.command.id
        if row.state not in ("stopped", "error"):
            row.state = "stopping"
        audit.record(s, actor, "relay.stop", "relay", session_id, {"command_id": sub.command.id},
                     areas=_areas(s, target))
        s.flush()
        s.expunge(row)
    return row, sub


def _areas(session: Session, target: dict[str, Any]) -> list[str]:
    try:
        return list(subtree_paths(session, target.get("areas") or []))
    except AreaError:
        return []


def _flat(messages: Any) -> list[str]:
    if isinstance(messages, dict):
        return [f"{k}: {m}" for k, v in messages.items() for m in _flat(v)]
    if isinstance(messages, list):
        return [m for v in messages for m in _flat(v)]
    return [str(messages)]


def events_of(session: Session, session_id: str, limit: int = 200) -> list[dict[str, Any]]:
    rows = session.scalars(select(RelayEvent).where(RelayEvent.session_id == session_id)
                           .order_by(RelayEvent.id.desc()).limit(limit))
    return [{"kind": e.kind, "reason": e.reason, "at": e.at, "detail": e.detail} for e in reversed(list(rows))]


def describe(settings: Settings, row: RelaySession, events: list[dict[str, Any]] | None = None,
             with_source: bool = False) -> dict[str, Any]:
    """A session as the API answers it; `with_source` adds the live source's credentials (its creator only)."""
    out = {"id": row.id, "kind": row.kind, "station_id": row.station_id, "content_id": row.content_id,
           "mount": row.mount, "listen_url": listen_url(settings, row.mount), "target": row.target,
           "priority": row.priority, "desired": row.desired, "state": row.state, "error": row.error,
           "listeners": row.listeners, "bytes_read": row.bytes_read, "bytes_sent": row.bytes_sent,
           "start_command_id": row.start_command_id, "stop_command_id": row.stop_command_id,
           "created_by": row.created_by, "created_at": row.created_at, "updated_at": row.updated_at,
           "stopped_by": row.stopped_by, "stopped_at": row.stopped_at}
    if events is not None:
        out["events"] = events
        out["dead_air"] = sum(1 for e in events if e["kind"] == "dead_air")
    if with_source and row.kind == "live" and row.desired == "running":
        out["source"] = live_source(settings, row)
    return out
