"""What a programme must satisfy to be saved: one thing to play, published contents, no emergency,
a stream that is not the hub's own service, a calendar that parses, a target within its author's
areas; and what it overlaps, refused or kept with a stated precedence.

Every door (API, CLI) saves through hub.broadcast.editing, which calls these; a refusal is a
ProgrammeRefused naming the request field at fault and the HTTP status to answer with.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.access.actors import Actor
from hub.access.permissions import COMMAND_SENDERS, describe, may_send_commands
from hub.broadcast.conflicts import Conflict, conflicts
from hub.broadcast.precedence import rank
from hub.broadcast.programmes import LOCAL_TZ, ProgrammeError, parse_calendar
from hub.delivery.dispatch import DispatchError, check_scope
from hub.fleet.areas import AreaError, subtree_paths
from hub.fleet.targeting import TargetError, resolve
from hub.runtime import Runtime
from hub.store.broadcast_tables import Programme
from hub.store.content_tables import ContentStatus
from hub.store.models import Area, Content, Group

WHAT_PLAYS = ("content_id", "playlist", "stream_url")
MAX_LISTED = 50  # overlaps named in one refusal; the message says how many more


class ProgrammeRefused(ValueError):
    """A programme cannot be saved (or seen); `field` is the request field at fault."""

    def __init__(self, field: str | None, message: str, status: int = 422, lines: list[str] | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field, self.message, self.status = field, message, status
        self.lines = lines or [message]  # what to list under the field (each overlap, for a 409)


def require_sender(actor: Actor) -> None:
    """Programmes become commands: only those who may send commands keep them."""
    if not may_send_commands(actor.roles):
        raise ProgrammeRefused(None, f"{actor.name} may not keep programmes: needs {describe(COMMAND_SENDERS)}", 403)
    if actor.read_only:
        raise ProgrammeRefused(None, f"this API token of {actor.name} is read-only", 403)


def check_what_plays(rt: Runtime, session: Session, p: Programme) -> None:
    given = [f for f in WHAT_PLAYS if getattr(p, f)]
    if len(given) != 1:
        raise ProgrammeRefused(given[1] if len(given) > 1 else "content_id",
                               "give exactly one of content_id, playlist or stream_url"
                               + (f" (got {', '.join(given)})" if given else ""))
    if p.priority == "emergency":
        raise ProgrammeRefused("priority", "an emergency is not kept in a programme: it goes out at once, to every "
                                           "device of its areas (send it as an emergency command)")
    if p.content_id:
        _published(session, [("content_id", p.content_id)])
    elif p.playlist:
        contents = _published(session, [(f"playlist.{i}", cid) for i, cid in enumerate(p.playlist)])
        for i, cid in enumerate(p.playlist):
            if not (contents[cid].media or {}).get("duration_s"):
                raise ProgrammeRefused(f"playlist.{i}", f"content {cid} has no known duration: the item after it "
                                                        "could not be placed")
    else:
        _stream(rt, p.stream_url or "")


def _published(session: Session, refs: list[tuple[str, str]]) -> dict[str, Content]:
    out: dict[str, Content] = {}
    for field, cid in refs:
        content = session.get(Content, cid)
        if content is None:
            raise ProgrammeRefused(field, f"unknown content {cid}")
        if content.status is not None and content.status != ContentStatus.PUBLISHED:
            raise ProgrammeRefused(field, f"content {cid} is {content.status}; only a published content may be "
                                          "played by a programme (have it approved and published first)", 409)
        out[cid] = content
    return out


def _stream(rt: Runtime, url: str) -> None:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ProgrammeRefused("stream_url", f"{url!r} has a bad port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProgrammeRefused("stream_url", "a stream is an http:// or https:// address devices fetch")
    own = rt.address_policy().own_service(parts.hostname, port)
    if own is not None:
        raise ProgrammeRefused("stream_url", f"{parts.hostname}:{port} is the hub's own {own}; a stream can "
                                             "never be one")


def check_calendar(p: Programme) -> None:
    try:
        parse_calendar(p.ical)
    except ProgrammeError as exc:
        raise ProgrammeRefused("ical", str(exc)) from None
    if p.valid_from is not None and p.valid_until is not None and p.valid_until <= p.valid_from:
        raise ProgrammeRefused("valid_until", "must be after valid_from")


def check_target(session: Session, actor: Actor, p: Programme, field: str = "target") -> None:
    """The target selects only devices and names only areas within the author's areas (the rule of
    commands: hub.delivery.dispatch.check_scope); sets the programme's area."""
    try:
        paths = actor.area_paths(session)
        named = any(p.target.get(k) for k in ("areas", "devices", "groups"))
        if p.target.get("geometry") and not named and paths is not None:
            # the scheduler sends as the hub: bound the drawing by the author's areas now, as submit would
            p.target = {**p.target, "areas": sorted(actor.areas or ())}
        devices = resolve(session, p.target, within_paths=paths)
        check_scope(session, actor, p.target, devices)
    except TargetError as exc:
        raise ProgrammeRefused(field if exc.field in (None, "target") else f"{field}.{exc.field.split('.', 1)[-1]}",
                               exc.message) from None
    except DispatchError as exc:
        raise ProgrammeRefused(field, exc.message, exc.status) from None
    except AreaError as exc:
        raise ProgrammeRefused(field, str(exc)) from None
    p.area_code = area_of(session, p.target, [d.area.path for d in devices])


def area_of(session: Session, target: dict[str, Any], device_paths: list[str]) -> str | None:
    """The narrowest area holding every area, group and device the target names or selects."""
    paths = list(subtree_paths(session, target.get("areas") or ()).values()) + device_paths
    groups = list(target.get("groups") or ())
    if groups:
        paths += session.scalars(select(Area.path).join(Group, Group.area_code == Area.code)
                                 .where(Group.id.in_(groups))).all()
    if not paths:
        return None
    split = [[c for c in path.split("/") if c] for path in paths]
    common: list[str] = []
    for codes in zip(*split):
        if len(set(codes)) != 1:
            break
        common.append(codes[0])
    return common[-1] if common else None


def _when(start: datetime, end: datetime) -> str:
    a, b = start.astimezone(LOCAL_TZ), end.astimezone(LOCAL_TZ)
    tail = f"–{b.strftime('%H:%M')}" if end > start else ""
    return f"{a.strftime('%Y-%m-%d %H:%M')}{tail} (+07:00)"


def describe_conflict(c: Conflict, names: dict[str, str]) -> str:
    return (f"device {c.device_id}: {_when(c.start, c.end)} of programme {c.programme_id} "
            f"({names.get(c.programme_id, '')!s}) overlaps {_when(c.other_start, c.other_end)} of programme "
            f"{c.other_programme_id} ({names.get(c.other_programme_id, '')!s})")


def check_overlaps(session: Session, p: Programme, overlap: str, precedence: int | None,
                   now: datetime) -> list[Conflict]:
    """Refuse (409, every overlap named) unless `overlap` is "keep" with a precedence; a kept
    overlap needs a precedence other than each overlapped programme's (one of the two must have the
    device). Sets the programme's precedence; returns the overlaps kept."""
    found = conflicts(session, p, start=now)
    if overlap == "keep":
        if precedence is None:
            raise ProgrammeRefused("precedence", "keeping an overlap needs a precedence (the higher plays on the "
                                                 "devices both reach)")
        p.precedence = precedence
    if not found:
        return []
    others = {c.other_programme_id for c in found}
    names = {p.id: p.name, **dict(session.execute(select(Programme.id, Programme.name).where(
        Programme.id.in_(others))).all())}
    if overlap != "keep":
        lines = [describe_conflict(c, names) for c in found[:MAX_LISTED]]
        if len(found) > MAX_LISTED:
            lines.append(f"and {len(found) - MAX_LISTED} more")
        raise ProgrammeRefused("overlap", f"{len(found)} overlap(s) with other programmes on a device, the first: "
                                          f"{lines[0]}; refused (send overlap \"keep\" with a precedence to keep "
                                          "them)", 409, lines)
    equal = sorted(o.id for o in session.scalars(select(Programme).where(Programme.id.in_(others)))
                   if rank(o) == rank(p))
    if equal:
        raise ProgrammeRefused("precedence", f"programme(s) {', '.join(equal)} overlap with the same precedence "
                                             f"({rank(p)}): choose another, so that one of them has the devices")
    return found
