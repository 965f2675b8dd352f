"""Occurrences become the existing scheduled commands (hub.delivery.dispatch.submit with a
start_at) a look-ahead ahead of time, idempotently.

Each command carries its occurrence's key (hub.broadcast.programmes.Occurrence.key), the
programme's revision when it was edited (`@r2`) and the item's place for a playlist or a stream's
stop (`#1`, `#stop`) as its idempotency key, under one issuer name. The database refuses a second
command with the same issuer and key (uq_command_idempotency), so running twice, from two
processes at once, or after a restart replays the first command instead of making another: a slot
never fires twice. Nothing is held in memory between runs, so a materialiser that restarts resumes
from the database.

After an outage it looks back `programme_catch_up_s` (never before the programme's current
revision was saved): an occurrence with no command of any revision that is still open (it has an
end, later than now) is sent late — from now until its end; one entirely past is recorded with its
planned times, every device `expired` "the hub was not running" (hub.delivery.missed), so that the
slot shows as not played rather than vanishing.

A command carries expires_at = its occurrence's end when the event has one (DTEND or DURATION):
for the arbiter, "its slot is still open". Where a programme kept an overlap with one of higher
precedence (hub.broadcast.precedence), its command targets its remaining devices by id and the
devices it gave up are stated (log and `Materialised.skipped`).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import or_, select

from hub.access.actors import Actor
from hub.broadcast.precedence import Precedence
from hub.broadcast.programmes import LOCAL_TZ, Occurrence, ProgrammeError, occurrences
from hub.delivery.dispatch import DispatchError, submit
from hub.delivery.missed import record_missed
from hub.runtime import Runtime
from hub.schemas import CommandSchema
from hub.store.broadcast_tables import Programme
from hub.store.db import utcnow
from hub.store.models import Command, Content

log = logging.getLogger(__name__)

# Programmes' commands are the scheduler's, not their author's: the author's areas are checked
# when a programme is saved (hub.broadcast.editing), and the author may leave.
ISSUER = Actor(name="scheduler:programmes")

SKIPPED = "_skipped"  # beside a raw command: the devices it leaves to a programme of higher precedence
_KEY = re.compile(r"^(programme:[^:]+:\d{8}T\d{6}Z)(?:@r\d+)?(#.*)?$")


@dataclass
class Materialised:
    created: list[str] = field(default_factory=list)  # idempotency keys of commands made by this run
    existing: list[str] = field(default_factory=list)  # already made, by an earlier run or another process
    refused: dict[str, str] = field(default_factory=dict)  # key → why dispatch refused it
    late: list[str] = field(default_factory=list)  # made after their start (an outage): from now to their end
    missed: list[str] = field(default_factory=list)  # entirely past: recorded `expired`, never sent
    skipped: dict[str, list[str]] = field(default_factory=dict)  # key → devices given to a higher precedence


def command_key(programme: Programme, occ: Occurrence, item: str = "") -> str:
    """The idempotency key of one command of an occurrence (`item`: "#0", "#start"...)."""
    revision = f"@r{programme.revision}" if programme.revision else ""
    return f"{occ.key}{revision}{item}"


def slot_of(key: str) -> tuple[str, str] | None:
    """(occurrence key, item) of a programme command's key, whatever its revision."""
    m = _KEY.match(key or "")
    return (m[1], m[2] or "") if m else None


def commands_for(programme: Programme, occ: Occurrence, durations: dict[str, float],
                 target: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The raw commands (CommandSchema input) that play one occurrence. `durations`: a playlist
    item's length in seconds, which places the next item after it. `target`: instead of the
    programme's (its remaining devices after an overlap kept with precedence)."""
    base = {"target": target if target is not None else programme.target, "priority": programme.priority}

    def timed(at: datetime) -> dict[str, str]:
        out = {"start_at": at.isoformat()}
        if occ.end > at:  # the slot's end: the arbiter's "still open", the deliveries' deadline
            out["expires_at"] = occ.end.isoformat()
        return out

    if programme.content_id:
        return [{**base, "verb": "play", "content_id": programme.content_id, **timed(occ.start),
                 "idempotency_key": command_key(programme, occ)}]
    if programme.playlist:
        out, at = [], occ.start
        for i, cid in enumerate(programme.playlist):
            out.append({**base, "verb": "play", "content_id": cid, **timed(at),
                        "idempotency_key": command_key(programme, occ, f"#{i}")})
            if cid not in durations:
                raise ProgrammeError(f"playlist item {cid} has no known duration: the next item cannot be placed")
            at += timedelta(seconds=durations[cid])
        return out
    if programme.stream_url:
        out = [{**base, "verb": "relay_start", "params": {"url": programme.stream_url}, **timed(occ.start),
                "idempotency_key": command_key(programme, occ, "#start")}]
        if occ.end > occ.start:
            out.append({**base, "verb": "relay_stop", "start_at": occ.end.isoformat(),
                        "idempotency_key": command_key(programme, occ, "#stop")})
        return out
    raise ProgrammeError(f"programme {programme.id} plays nothing (no content, playlist or stream)")


def durations_of(rt: Runtime, content_ids: Collection[str]) -> dict[str, float]:
    """Content id → its media's length in seconds, for those that know it."""
    ids = sorted(set(content_ids))
    if not ids:
        return {}
    with rt.db.session() as session:
        rows = session.execute(select(Content.id, Content.media).where(Content.id.in_(ids)))
        return {cid: float(media["duration_s"]) for cid, media in rows if (media or {}).get("duration_s")}


def local(at: datetime) -> str:
    return at.astimezone(LOCAL_TZ).isoformat(timespec="minutes")


class Materialiser:
    """Makes the commands of every programme's occurrences starting in [now, now + look_ahead),
    and catches up those of the last `catch_up` that have none."""

    def __init__(self, rt: Runtime, look_ahead: timedelta | None = None, catch_up: timedelta | None = None) -> None:
        st = rt.settings
        self.rt = rt
        self.look_ahead = look_ahead if look_ahead is not None else timedelta(seconds=st.programme_look_ahead_s)
        self.catch_up = catch_up if catch_up is not None else timedelta(seconds=st.programme_catch_up_s)

    def run(self, now: datetime | None = None, only: Collection[str] | None = None) -> Materialised:
        """One pass; `only`: these programme ids (after an edit), else every programme."""
        now = now or utcnow()
        done = Materialised()
        with self.rt.db.session() as session:
            stmt = select(Programme).order_by(Programme.id)
            every = list(session.scalars(stmt))
            programmes = [p for p in every if only is None or p.id in only]
            if not programmes:
                return done
            durations = durations_of(self.rt, [c for p in programmes for c in (p.playlist or ())])
            precedence = Precedence(session, every, now - self.catch_up, now + self.look_ahead)
            work: list[tuple[Programme, list[dict[str, Any]], set[tuple[str, str]]]] = []
            for programme in programmes:
                try:
                    raws = self._raws(programme, now, durations, precedence, done)
                except ProgrammeError as exc:
                    log.error("programme %s: %s", programme.id, exc)
                    done.refused[f"programme:{programme.id}"] = str(exc)
                    continue
                work.append((programme, raws, self._made(session, programme, raws, now)))
            session.expunge_all()
        for programme, raws, made in work:
            for raw in raws:
                self._one(programme, raw, now, made, done)
        return done

    def _raws(self, programme: Programme, now: datetime, durations: dict[str, float], precedence: Precedence,
              done: Materialised) -> list[dict[str, Any]]:
        since = max(now - self.catch_up, programme.revised_at or programme.created_at)
        out: list[dict[str, Any]] = []
        for occ in occurrences(programme, since, now + self.look_ahead):
            given = precedence.given_up(programme, occ)
            if not given:
                out += commands_for(programme, occ, durations)
                continue
            keep = sorted(precedence.devices(programme) - set(given))
            log.info("programme %s at %s: devices %s go to programme(s) %s of higher precedence", programme.id,
                     local(occ.start), ", ".join(sorted(given)), ", ".join(sorted(set(given.values()))))
            if not keep:  # nothing left to play on: no command, and said so
                done.skipped[command_key(programme, occ)] = sorted(given)
                continue
            out += [{**raw, SKIPPED: sorted(given)} for raw in commands_for(programme, occ, durations,
                                                                            {"devices": keep})]
        return out

    def _made(self, session: Any, programme: Programme, raws: list[dict[str, Any]],
              now: datetime) -> set[tuple[str, str]]:
        """(occurrence key, item) of the past slots among `raws` that have a command not cancelled,
        of any revision: catch-up leaves them alone."""
        past = {slot_of(r["idempotency_key"])[0] for r in raws if datetime.fromisoformat(r["start_at"]) < now}
        if not past:
            return set()
        found = session.scalars(select(Command.idempotency_key).where(
            Command.issuer == ISSUER.name, Command.cancelled_at.is_(None),
            or_(*(Command.idempotency_key.like(f"{k}%") for k in sorted(past)))))
        return {slot for key in found if (slot := slot_of(key)) is not None}

    def _one(self, programme: Programme, raw: dict[str, Any], now: datetime, made: set[tuple[str, str]],
             done: Materialised) -> None:
        given = raw.pop(SKIPPED, None)
        key = raw["idempotency_key"]
        start = datetime.fromisoformat(raw["start_at"])
        ends = datetime.fromisoformat(raw["expires_at"]) if raw.get("expires_at") else None
        kind = done.created
        try:
            if start >= now:
                result = submit(self.rt, ISSUER, CommandSchema().load(raw))
            elif slot_of(key) in made:
                done.existing.append(key)
                return
            elif ends is not None and ends > now:  # still open: from now until its end
                log.warning("programme %s: %s starts late, at %s (planned %s; the hub was not running)",
                            programme.id, key, local(now), local(start))
                result, kind = submit(self.rt, ISSUER, CommandSchema().load({**raw, "start_at": now.isoformat()})), \
                    done.late
            else:
                ttl = timedelta(seconds=self.rt.settings.default_ttl_s)
                planned = {**raw, "expires_at": (ends or min(start + ttl, now)).isoformat()}
                reason = (f"the hub was not running at {local(start)}, when programme {programme.name!r} was to "
                          "play here: never sent")
                log.warning("programme %s: %s passed while the hub was not running; recorded as missed",
                            programme.id, key)
                result, kind = record_missed(self.rt, ISSUER, CommandSchema().load(planned), reason, now), \
                    done.missed
        except (DispatchError, ValidationError) as exc:
            if isinstance(exc, DispatchError) and exc.field == "idempotency_key":
                # made before with other data: another process made it late, or its devices changed
                done.existing.append(key)
                return
            log.error("occurrence %s refused: %s", key, exc)
            done.refused[key] = str(exc)
            return
        (kind if result.created else done.existing).append(key)
        if given and result.created:  # stated where the command that left them out is made
            done.skipped[key] = given
