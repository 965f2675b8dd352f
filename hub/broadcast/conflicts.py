"""Two programmes whose occurrences hold the air of one device at the same time.

Reported before a programme is saved, naming the device, both times and both programmes, so the
operator refuses it or keeps it with a precedence they chose (the interface asks; this says).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.broadcast.programmes import Occurrence, occurrences, overlap
from hub.fleet.targeting import TargetError, resolve
from hub.store.broadcast_tables import Programme
from hub.store.db import utcnow

HORIZON = timedelta(days=28)  # four weeks hold every weekly pattern and most monthly ones


@dataclass(frozen=True)
class Conflict:
    device_id: str
    programme_id: str
    other_programme_id: str
    start: datetime  # the programme's occurrence (UTC)
    end: datetime
    other_start: datetime  # the other programme's occurrence (UTC)
    other_end: datetime

    def __str__(self) -> str:
        return (f"device {self.device_id}: programme {self.programme_id} at {self.start.isoformat()} overlaps "
                f"programme {self.other_programme_id} at {self.other_start.isoformat()}")


def _devices(session: Session, programme: Programme) -> set[str]:
    try:
        return {d.id for d in resolve(session, programme.target)}
    except TargetError:  # a target naming what no longer exists reaches nothing
        return set()


def conflicts(session: Session, programme: Programme, start: datetime | None = None,
              horizon: timedelta = HORIZON) -> list[Conflict]:
    """Every overlap of `programme` (saved or not) with another saved programme on a device both
    reach, among occurrences starting in [start, start + horizon); sorted by time and device."""
    start = start or utcnow()
    end = start + horizon
    mine_devices = _devices(session, programme)
    if not mine_devices:
        return []
    mine = occurrences(programme, start, end)
    found: list[Conflict] = []
    others = session.scalars(select(Programme).where(Programme.id != programme.id).order_by(Programme.id))
    for other in others:
        shared = mine_devices & _devices(session, other)
        if not shared:
            continue
        theirs: list[Occurrence] = occurrences(other, start, end)
        for a in mine:
            for b in theirs:
                if overlap(a, b):
                    found += [Conflict(d, programme.id, other.id, a.start, a.end, b.start, b.end)
                              for d in sorted(shared)]
    return sorted(found, key=lambda c: (c.start, c.device_id, c.other_programme_id))
