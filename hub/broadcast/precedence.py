"""Overlaps kept with a precedence: which devices a programme's occurrence gives up.

An operator may keep two programmes that overlap on some devices, stating a precedence
(hub.broadcast.editing). The rule: on a device where two occurrences overlap, the programme of
the higher precedence plays; the other's command for that occurrence reaches its remaining
devices only. A programme without a precedence counts as 0; equal precedences give nothing up
(the save refuses keeping an overlap at equal precedence, so this only happens when devices
joined an area after both were saved: both play, and the arbiter decides as for any two commands).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from hub.broadcast.programmes import Occurrence, ProgrammeError, occurrences, overlap
from hub.fleet.targeting import TargetError, resolve
from hub.store.broadcast_tables import Programme

# an occurrence of the winner that began this long before the window may still hold the air in it
REACH_BACK = timedelta(days=1)


def rank(programme: Programme) -> int:
    return programme.precedence or 0


class Precedence:
    """For one materialiser run over [start, end): the devices each occurrence gives up."""

    def __init__(self, session: Session, programmes: list[Programme], start: datetime, end: datetime) -> None:
        self.session, self.start, self.end = session, start, end
        self.programmes = programmes
        self._devices: dict[str, set[str]] = {}
        self._occs: dict[str, list[Occurrence]] = {}

    def devices(self, programme: Programme) -> set[str]:
        """The ids of the devices the programme's target selects now."""
        if programme.id not in self._devices:
            try:
                self._devices[programme.id] = {d.id for d in resolve(self.session, programme.target)}
            except TargetError:  # names what no longer exists: reaches nothing
                self._devices[programme.id] = set()
        return self._devices[programme.id]

    def _occurrences(self, programme: Programme) -> list[Occurrence]:
        if programme.id not in self._occs:
            try:
                self._occs[programme.id] = occurrences(programme, self.start - REACH_BACK, self.end)
            except ProgrammeError:  # its own run reports it
                self._occs[programme.id] = []
        return self._occs[programme.id]

    def given_up(self, programme: Programme, occ: Occurrence) -> dict[str, str]:
        """Device id → id of the programme of higher precedence that has it during `occ`."""
        out: dict[str, str] = {}
        mine = self.devices(programme)
        for other in sorted(self.programmes, key=lambda p: (-rank(p), p.id)):
            if other.id == programme.id or rank(other) <= rank(programme):
                continue
            shared = (mine & self.devices(other)) - set(out)
            if shared and any(overlap(occ, theirs) for theirs in self._occurrences(other)):
                out.update(dict.fromkeys(shared, other.id))
        return out
