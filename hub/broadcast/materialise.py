"""Occurrences become the existing scheduled commands (hub.delivery.dispatch.submit with a
start_at) a look-ahead ahead of time, idempotently.

Each command carries its occurrence's key (hub.broadcast.programmes.Occurrence.key, plus the
item's place for a playlist or a stream's stop) as its idempotency key, under one issuer name.
The database refuses a second command with the same issuer and key (uq_command_idempotency), so
running twice, from two processes at once, or after a restart replays the first command instead
of making another: a slot never fires twice. Nothing is held in memory between runs, so a
materialiser that restarts resumes from the database: a slot is never skipped as long as it runs
at least once per look-ahead.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select

from hub.access.actors import Actor
from hub.broadcast.programmes import Occurrence, ProgrammeError, occurrences
from hub.delivery.dispatch import DispatchError, submit
from hub.runtime import Runtime
from hub.schemas import CommandSchema
from hub.store.broadcast_tables import Programme
from hub.store.models import Content

log = logging.getLogger(__name__)

# Programmes' commands are the scheduler's, not their author's: the author's areas are checked
# when a programme is saved (by the interface that saves it), and the author may leave.
ISSUER = Actor(name="scheduler:programmes")


@dataclass
class Materialised:
    created: list[str] = field(default_factory=list)  # idempotency keys of commands made by this run
    existing: list[str] = field(default_factory=list)  # already made, by an earlier run or another process
    refused: dict[str, str] = field(default_factory=dict)  # key → why dispatch refused it


def commands_for(programme: Programme, occ: Occurrence, durations: dict[str, float]) -> list[dict[str, Any]]:
    """The raw commands (CommandSchema input) that play one occurrence. `durations`: a playlist
    item's length in seconds, which places the next item after it."""
    base = {"target": programme.target, "priority": programme.priority}
    if programme.content_id:
        return [{**base, "verb": "play", "content_id": programme.content_id,
                 "start_at": occ.start.isoformat(), "idempotency_key": occ.key}]
    if programme.playlist:
        out, at = [], occ.start
        for i, cid in enumerate(programme.playlist):
            out.append({**base, "verb": "play", "content_id": cid, "start_at": at.isoformat(),
                        "idempotency_key": f"{occ.key}#{i}"})
            if cid not in durations:
                raise ProgrammeError(f"playlist item {cid} has no known duration: the next item cannot be placed")
            at += timedelta(seconds=durations[cid])
        return out
    if programme.stream_url:
        out = [{**base, "verb": "relay_start", "params": {"url": programme.stream_url},
                "start_at": occ.start.isoformat(), "idempotency_key": f"{occ.key}#start"}]
        if occ.end > occ.start:
            out.append({**base, "verb": "relay_stop", "start_at": occ.end.isoformat(),
                        "idempotency_key": f"{occ.key}#stop"})
        return out
    raise ProgrammeError(f"programme {programme.id} plays nothing (no content, playlist or stream)")


def _durations(rt: Runtime, programmes: list[Programme]) -> dict[str, float]:
    ids = sorted({cid for p in programmes for cid in (p.playlist or ())})
    if not ids:
        return {}
    with rt.db.session() as session:
        rows = session.execute(select(Content.id, Content.media).where(Content.id.in_(ids)))
        return {cid: float(media["duration_s"]) for cid, media in rows if (media or {}).get("duration_s")}


class Materialiser:
    """Makes the commands of every programme's occurrences starting in [now, now + look_ahead)."""

    def __init__(self, rt: Runtime, look_ahead: timedelta = timedelta(hours=24)) -> None:
        self.rt, self.look_ahead = rt, look_ahead

    def run(self, now: datetime) -> Materialised:
        with self.rt.db.session() as session:
            programmes = list(session.scalars(select(Programme).order_by(Programme.id)))
            session.expunge_all()
        durations = _durations(self.rt, programmes)
        done = Materialised()
        for programme in programmes:
            try:
                occs = occurrences(programme, now, now + self.look_ahead)
                raws = [raw for occ in occs for raw in commands_for(programme, occ, durations)]
            except ProgrammeError as exc:
                log.error("programme %s: %s", programme.id, exc)
                done.refused[f"programme:{programme.id}"] = str(exc)
                continue
            for raw in raws:
                self._one(raw, done)
        return done

    def _one(self, raw: dict[str, Any], done: Materialised) -> None:
        key = raw["idempotency_key"]
        try:
            result = submit(self.rt, ISSUER, CommandSchema().load(raw))
        except (DispatchError, ValidationError) as exc:
            if isinstance(exc, DispatchError) and exc.field == "idempotency_key":
                # made before with other data: the programme changed after its command was made
                done.existing.append(key)
                return
            log.error("occurrence %s refused: %s", key, exc)
            done.refused[key] = str(exc)
            return
        (done.created if result.created else done.existing).append(key)
