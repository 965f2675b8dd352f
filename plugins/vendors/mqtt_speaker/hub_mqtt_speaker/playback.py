"""What a simulated speaker plays, and what it does when items collide: the device's own
arbiter (this vendor's traits.priority is "device": the hub sends the class, the device decides).

The rule (the hub states it in hub/arbiter_rule.py; firmware imports nothing of the hub, so it is
copied here, and tests/test_arbiter_rule.py holds the two together):

    emergency > live/relay > priority > normal > idle

* a relay of class normal or priority ranks as "live"; an emergency relay is an emergency;
* a higher rank pre-empts what plays: the interrupted item is **kept**, and plays again from its
  start when nothing higher is left, unless its expires_at (its slot's end) passed meanwhile;
* a lower rank waits in the queue; an equal rank replaces what plays (newest wins), except two
  emergencies, which queue: the second plays after the first; an interrupted item does not resume
  when a newer item of its rank came meanwhile (that one replaces it);
* `stop` clears everything (queue and interrupted items); with `ignore_priority` (a fault switch)
  the device is a plain FIFO that never pre-empts.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub_mqtt_speaker import protocol, stream

RANKS = ("idle", "normal", "priority", "live", "emergency")
RANK = {name: i for i, name in enumerate(RANKS)}


def rank_name(kind: str, priority: str) -> str:
    """The arbiter rank of a playback (`kind` play | relay)."""
    return "live" if kind == "relay" and priority != "emergency" else priority


@dataclass
class Playback:
    command_id: str
    kind: str  # play | relay
    priority: str
    source: str | None
    duration_s: float | None  # None: until stopped (relays)
    expires_at: datetime | None
    seq: int = 0
    interrupted: bool = False  # pre-empted once; plays again from its start when it resumes

    @property
    def rank(self) -> int:
        return RANK[rank_name(self.kind, self.priority)]

    def open(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


class Playing:
    """The playback half of the simulated firmware (mixed into device.Behaviour, which holds
    `state`, `spec`, `host`, `_seq` and `_end_timer`)."""

    state: Any
    spec: Any
    host: Any
    _seq: int
    _end_timer: Any

    def _arbitrate(self, pb: Playback) -> dict[str, Any] | None:
        """Start `pb` now or queue it (the rule is in this module's docstring)."""
        self._seq += 1
        pb.seq = self._seq
        current = self.state.current
        if current is None:
            self._start(pb)
            return None
        if self.spec.ignore_priority:
            self.state.queue.append(pb)
            return {"queued": True}
        if pb.rank > current.rank:  # pre-empt: keep what played, to resume it
            current.interrupted = True
            self.state.interrupted.append(current)
            self._start(pb)
            return None
        if pb.rank == current.rank and rank_name(pb.kind, pb.priority) != "emergency":
            self._start(pb)  # newest of an equal class wins; the replaced item ends
            return None
        self.state.queue.append(pb)
        return {"queued": True}

    def _start(self, pb: Playback) -> None:
        self._cancel(self._end_timer)
        s = self.state
        s.current = pb
        s.activity = "playing" if pb.kind == "play" else "relaying"
        s.source = pb.source
        stream.follow(s.streams, pb.source if pb.kind == "relay" else None)
        if pb.duration_s is not None:  # a resumed item plays again from its start: its whole length
            self._end_timer = self.host.call_later(pb.duration_s, lambda: self._ended(pb))

    def _ended(self, pb: Playback) -> None:
        if self.state.current is pb:
            self._finish()
            self._report()

    def _halt_playback(self) -> None:
        self._cancel(self._end_timer)
        s = self.state
        s.current = None
        if s.activity in ("playing", "relaying"):
            s.activity, s.source = "idle", None
        stream.follow(s.streams, None)

    def _clear_playback(self) -> None:
        """`stop`, power off: nothing waits and nothing resumes."""
        self.state.queue.clear()
        self.state.interrupted.clear()
        self._halt_playback()

    def _finish(self) -> None:
        """What plays is done; start the best item waiting — interrupted or queued — whose slot is
        still open. Highest rank first; at one rank, an interrupted item before a queued one (it
        was playing), then the oldest (emergencies in arrival order)."""
        self._halt_playback()
        s, now = self.state, protocol.utcnow()
        s.queue[:] = [pb for pb in s.queue if pb.open(now)]
        s.interrupted[:] = [pb for pb in s.interrupted if pb.open(now)]  # slot closed: skipped
        waiting = s.queue + s.interrupted
        if not waiting:
            return
        if self.spec.ignore_priority:
            nxt = min(waiting, key=lambda pb: pb.seq)
        else:
            nxt = min(waiting, key=lambda pb: (-pb.rank, not pb.interrupted, pb.seq))
            newer = [pb for pb in s.queue if pb.rank == nxt.rank and pb.seq > nxt.seq]
            if nxt.interrupted and newer and rank_name(nxt.kind, nxt.priority) != "emergency":
                s.interrupted.remove(nxt)  # a newer item of its rank came meanwhile: it replaces it
                nxt = min(newer, key=lambda pb: pb.seq)
        (s.interrupted if nxt in s.interrupted else s.queue).remove(nxt)
        self._start(nxt)

    # provided by device.Behaviour
    def _report(self) -> None: ...

    @staticmethod
    def _cancel(timer: Any) -> None: ...
