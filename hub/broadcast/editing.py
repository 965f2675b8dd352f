"""Saving programmes: create, edit, delete and import, for every door (API, CLI) alike.

A save checks the rules (hub.broadcast.rules), writes the programme and its audit entry in one
transaction, then makes the commands of its coming occurrences at once (the scheduler would
within `programme_materialise_interval_s` anyway). An edit bumps the programme's revision, which is
part of its commands' idempotency keys: the commands of the old revision not yet started are
cancelled, and the new ones made, so a restart with the same revision stays idempotent. A delete
cancels them too.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hub.access import audit
from hub.access.actors import Actor
from hub.broadcast.conflicts import Conflict
from hub.broadcast.ics import import_ics
from hub.broadcast.materialise import ISSUER, Materialised, Materialiser
from hub.broadcast.precedence import rank
from hub.broadcast.programmes import ProgrammeError
from hub.broadcast.rules import (ProgrammeRefused, check_calendar, check_overlaps, check_target, check_what_plays,
                                 require_sender)
from hub.capabilities import DEFAULT_PRIORITY
from hub.delivery.dispatch import DispatchError, cancel
from hub.fleet.areas import under_any
from hub.runtime import Runtime
from hub.store.broadcast_tables import Programme
from hub.store.db import utcnow
from hub.store.models import Area, Command

log = logging.getLogger(__name__)

FIELDS = ("name", "target", "content_id", "playlist", "stream_url", "priority", "ical", "valid_from", "valid_until")


@dataclass
class Saved:
    programmes: list[Programme]
    kept: list[Conflict] = field(default_factory=list)  # overlaps kept with a precedence
    cancelled: list[str] = field(default_factory=list)  # ids of the old revision's commands cancelled
    materialised: Materialised | None = None


# -- who sees what ----------------------------------------------------------------------------------
def visible_condition(session: Session, actor: Actor) -> Any:
    """SQL condition on Programme: its area lies in the actor's areas, or holds one of them (it
    plays there). None: every programme."""
    paths = actor.area_paths(session)
    if paths is None:
        return None
    inside = Programme.area_code.in_(select(Area.code).where(under_any(Area.path, paths)))
    holding = {code for path in paths for code in path.strip("/").split("/")}
    return or_(inside, Programme.area_code.in_(sorted(holding)))


def get(session: Session, actor: Actor, programme_id: str) -> Programme:
    """The programme if the actor may see it; ProgrammeRefused 404 otherwise (not "forbidden":
    what lies outside one's areas is not one's to learn)."""
    stmt = select(Programme).where(Programme.id == programme_id)
    cond = visible_condition(session, actor)
    found = session.scalars(stmt if cond is None else stmt.where(cond)).first()
    if found is None:
        raise ProgrammeRefused("id", f"unknown programme {programme_id}", 404)
    return found


# -- saving ---------------------------------------------------------------------------------------
def _checked(rt: Runtime, session: Session, actor: Actor, p: Programme, overlap: str, precedence: int | None,
             now: datetime, field_prefix: str = "") -> list[Conflict]:
    try:
        check_what_plays(rt, session, p)
        check_calendar(p)
        check_target(session, actor, p)
        return check_overlaps(session, p, overlap, precedence, now)
    except ProgrammeRefused as exc:
        if field_prefix and exc.field:
            exc.field = f"{field_prefix}.{exc.field}"
        raise


def _new(actor: Actor, data: dict[str, Any], now: datetime) -> Programme:
    p = Programme(id=uuid.uuid4().hex, created_by=actor.name, created_at=now, revision=0, revised_at=now,
                  priority=data.get("priority") or DEFAULT_PRIORITY)
    for name in FIELDS:
        if name in data and name != "priority":
            setattr(p, name, data[name])
    return p


def _record(session: Session, actor: Actor, action: str, p: Programme, detail: dict[str, Any] | None = None) -> None:
    audit.record(session, actor, action, "programme", p.id,
                 {"name": p.name, "revision": p.revision or 0, **(detail or {})},
                 areas=[p.area_code] if p.area_code else None)


def _outrank(session: Session, actor: Actor, p: Programme, kept: list[Conflict], now: datetime) -> list[str]:
    """The programmes `p` now outranks on some device: a new revision each (their commands made
    before with those devices are cancelled and made again without them). Their ids."""
    ids = sorted({c.other_programme_id for c in kept})
    out = []
    for other in session.scalars(select(Programme).where(Programme.id.in_(ids))):
        if rank(other) < rank(p):
            other.revision, other.revised_at = (other.revision or 0) + 1, now
            _record(session, actor, "programme.outranked", other, {"by": p.id, "precedence": rank(p)})
            out.append(other.id)
    return out


def _remake(rt: Runtime, actor: Actor, ids: list[str], why: str, now: datetime) -> tuple[list[str], Materialised]:
    cancelled = [cid for pid in ids
                 for cid in cancel_future(rt, pid, f"{ISSUER.name} (programme {pid} {why} by {actor.name})", now)]
    return cancelled, Materialiser(rt).run(now, only=ids)


def create(rt: Runtime, actor: Actor, data: dict[str, Any], now: datetime | None = None) -> Saved:
    """A new programme from validated fields (hub.api.programme_schemas), plus `overlap` and `precedence`."""
    require_sender(actor)
    now = now or utcnow()
    with rt.db.session() as session:
        p = _new(actor, data, now)
        kept = _checked(rt, session, actor, p, data.get("overlap", "refuse"), data.get("precedence"), now)
        session.add(p)
        _record(session, actor, "programme.create", p, {"kept_overlaps": len(kept)} if kept else None)
        session.flush()
        outranked = _outrank(session, actor, p, kept, now)
        session.expunge(p)
    cancelled, made = _remake(rt, actor, [p.id, *outranked], "outranked", now)
    return Saved([p], kept, cancelled, made)


def update(rt: Runtime, actor: Actor, programme_id: str, changes: dict[str, Any],
           now: datetime | None = None) -> Saved:
    """Edit: the old target must lie in the actor's areas as the new one must; a new revision."""
    require_sender(actor)
    now = now or utcnow()
    with rt.db.session() as session:
        p = get(session, actor, programme_id)
        check_target(session, actor, p)  # may the actor touch what it plays on now?
        for name in FIELDS:
            if name in changes:
                setattr(p, name, changes[name])
        stated = "keep" if p.precedence is not None else "refuse"
        kept = _checked(rt, session, actor, p, changes.get("overlap", stated),
                        changes.get("precedence", p.precedence), now)
        p.revision, p.revised_at = (p.revision or 0) + 1, now
        _record(session, actor, "programme.update", p, {"changed": sorted(set(changes) & set(FIELDS))})
        session.flush()
        outranked = _outrank(session, actor, p, kept, now)
        session.expunge(p)
    cancelled, made = _remake(rt, actor, [p.id, *outranked], "edited", now)
    return Saved([p], kept, cancelled, made)


def delete(rt: Runtime, actor: Actor, programme_id: str, now: datetime | None = None) -> list[str]:
    """Remove a programme and cancel its commands not yet started; their ids."""
    require_sender(actor)
    now = now or utcnow()
    with rt.db.session() as session:
        p = get(session, actor, programme_id)
        check_target(session, actor, p)
        _record(session, actor, "programme.delete", p)
        session.delete(p)
    return cancel_future(rt, programme_id, f"{ISSUER.name} (programme {programme_id} deleted by {actor.name})", now)


def cancel_future(rt: Runtime, programme_id: str, who: str, now: datetime | None = None) -> list[str]:
    """Cancel the programme's commands that have not started (released to a worker or not: a
    worker holding one hears of it): the ids cancelled. One that starts meanwhile plays."""
    now = now or utcnow()
    with rt.db.session() as session:
        ids = list(session.scalars(select(Command.id).where(
            Command.issuer == ISSUER.name, Command.idempotency_key.like(f"programme:{programme_id}:%"),
            Command.cancelled_at.is_(None), Command.start_at > now).order_by(Command.start_at)))
    done = []
    canceller = Actor(name=who[:100])
    for cid in ids:
        try:
            cancel(rt, canceller, cid)
            done.append(cid)
        except DispatchError as exc:  # it started in the meantime: it plays as planned
            log.warning("programme %s: command %s not cancelled: %s", programme_id, cid, exc.message)
    return done


def import_calendar(rt: Runtime, actor: Actor, text: str, common: dict[str, Any] | None,
                    per_uid: dict[str, dict[str, Any]], overlap: str = "refuse", precedence: int | None = None,
                    now: datetime | None = None) -> Saved:
    """One programme per event series (UID) of an `.ics` text, all or none. What plays and where
    comes from `per_uid[UID]`, else from `common`."""
    require_sender(actor)
    now = now or utcnow()
    try:
        series = import_ics(text)
    except ProgrammeError as exc:
        raise ProgrammeRefused("ics", str(exc)) from None
    if not series:
        raise ProgrammeRefused("ics", "holds no event (VEVENT)")
    unknown = sorted(set(per_uid) - set(series))
    if unknown:
        raise ProgrammeRefused("per_uid", f"no event with UID {unknown[0]} in the calendar")
    saved: list[Programme] = []
    kept: list[Conflict] = []
    outranked: list[str] = []
    with rt.db.session() as session:
        for uid, (name, ical) in sorted(series.items()):
            spec = per_uid.get(uid) or common
            where = f"per_uid.{uid}" if uid in per_uid else "common"
            if not spec:
                raise ProgrammeRefused("per_uid", f"nothing says what event {uid} ({name}) plays and where: give "
                                                  "common, or per_uid for it")
            p = _new(actor, {"name": spec.get("name") or name, **{k: v for k, v in spec.items() if k != "name"},
                             "ical": ical}, now)
            kept += _checked(rt, session, actor, p, overlap, precedence, now, where)
            session.add(p)
            session.flush()  # the next series' overlaps see this one
            _record(session, actor, "programme.import", p, {"uid": uid})
            outranked += _outrank(session, actor, p, kept, now)
            saved.append(p)
        session.expunge_all()
    cancelled, made = _remake(rt, actor, [p.id for p in saved] + sorted(set(outranked)), "outranked", now)
    return Saved(saved, kept, cancelled, made)


def listed(session: Session, actor: Actor, area: str | None = None) -> list[Programme]:
    """Programmes the actor sees, by name; `area`: those playing in that area (whose area lies in
    it or holds it)."""
    stmt = select(Programme).order_by(Programme.name, Programme.id)
    cond = visible_condition(session, actor)
    if cond is not None:
        stmt = stmt.where(cond)
    if area is not None:
        stmt = stmt.where(visible_condition(session, Actor(name="filter", areas=frozenset({area}))))
    return list(session.scalars(stmt))


def by_ids(session: Session, ids: Iterable[str]) -> list[Programme]:
    return list(session.scalars(select(Programme).where(Programme.id.in_(list(ids))).order_by(Programme.name)))
