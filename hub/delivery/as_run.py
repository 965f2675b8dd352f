"""The as-run recorder: segments of what each device actually played (hub.store.as_run_tables),
derived from what the ingest hears — acks and status reports — never from the plan.

Where it sits: the ingest (this layer) calls `record` after each batch it committed, in a
transaction of its own, so that a fault here never costs an ack or a status (the ingest's
promise). It reads the deliveries the ingest just wrote to learn which command a device plays.

The rules, per device, in the order the hub heard things:
* a segment **opens** when the device confirms it plays an item: an ok ack that says it plays
  (not queued), or a status whose source is the content (or stream) of a play sent to it — the
  newest such delivery is the item (a device that resumes an item shows its source again);
* it **closes** when a report shows something else: `finished` if it ran its length (or its
  length is unknown and it ended by itself, or a relay ended by its relay_stop), `interrupted`
  when a higher-ranking item replaced it (hub.arbiter_rule; interrupted_by names it), `stopped`
  when a stop or a newer item of the same rank ended it, `failed` when it ended early with
  nothing to explain it or the device went offline;
* an interrupted segment waits for what outranks it to end; then it is **resumed** (a new
  segment whose resume_of names the command) if its slot is still open, or a `skipped` row is
  written. Devices that arbitrate locally resume by themselves: the recorder only sees it. For
  vendors the hub arbitrates, `record` returns the resumes the hub must send (hub.delivery.resume).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from hub import arbiter_rule
from hub.delivery.as_run_facts import ContentFacts, content_facts
from hub.delivery.readback import _is_source
from hub.store.as_run_tables import AsRunOutcome as O
from hub.store.as_run_tables import AsRunSegment
from hub.store.batching import chunks
from hub.store.models import Command, Delivery, DeliveryState, Device
from hub.vendor import ACK_QUEUED

log = logging.getLogger(__name__)

PROGRAMME_ISSUER = "scheduler:programmes"  # hub.broadcast.materialise.ISSUER's name
RESUME_ISSUER = "scheduler:arbiter"  # hub.delivery.resume
_ON_AIR = ("playing", "relaying")
_STOPS = ("stop", "relay_stop")


@dataclass
class Seen:
    """One thing heard from a device that may say what it plays."""

    device_id: str
    at: datetime
    activity: str | None = None  # playing | relaying | idle | off | offline | …
    source: str | None = None  # from a status
    command_id: str | None = None  # from an ack saying it plays this command


@dataclass
class ResumeDue:
    """An interrupted item the hub must play again on a device it arbitrates for."""

    segment_id: int
    device_id: str
    command_id: str  # the original command (the item as planned)
    interrupted_by: str


@dataclass
class _Device:
    open: AsRunSegment | None
    pending: list[AsRunSegment] = field(default_factory=list)  # interrupted, follow-up not decided


def resume_origin(cmd: Command) -> str:
    """The command an item plays as planned: a resume the hub sent names its original in its
    idempotency key (resume:<original>:after:<interrupter>:<device>)."""
    key = cmd.idempotency_key or ""
    if cmd.issuer == RESUME_ISSUER and key.startswith("resume:"):
        return key.split(":")[1]
    return cmd.id


def _expected_s(cmd: Command) -> float | None:
    """How long a play runs, when its content says (times its repeat); None for a relay or unknown."""
    if cmd.verb != "play" or cmd.content is None:
        return None
    d = (cmd.content.media or {}).get("duration_s")
    if isinstance(d, bool) or not isinstance(d, (int, float)) or d <= 0:
        return None
    repeat = (cmd.params or {}).get("repeat", 1)
    return float(d) * (repeat if isinstance(repeat, int) and not isinstance(repeat, bool) and repeat > 1 else 1)


def _ran_its_length(seg: AsRunSegment, cmd: Command, at: datetime) -> bool | None:
    expected = _expected_s(cmd)
    if expected is None or seg.started_at is None:
        return None
    # the hub hears the start and the end with similar delays; allow for reports' granularity
    return (at - seg.started_at).total_seconds() >= expected - max(1.5, 0.1 * expected)


def _plays(cmd: Command, source: str | None, activity: str) -> bool:
    if cmd.verb == "relay_start":
        url = (cmd.params or {}).get("url") or ((cmd.content.media or {}).get("uri") if cmd.content else None)
        return activity == "relaying" and (source is None or source == url)
    return activity == "playing" and _is_source(source, cmd.content)


class Recorder:
    def __init__(self, session: Session, hub_arbitrated: set[str]) -> None:
        self.s, self.hub_arbitrated = session, hub_arbitrated
        self.devices: dict[str, _Device] = {}
        self.resumes: list[ResumeDue] = []
        self._commands: dict[str, Command | None] = {}
        self._areas: dict[str, str] = {}  # device id → its area now (snapshot for statistics)
        self._facts: dict[str | None, ContentFacts] = {}

    def command(self, cid: str | None) -> Command | None:
        if cid is None:
            return None
        if cid not in self._commands:
            self._commands[cid] = self.s.get(Command, cid)
        return self._commands[cid]

    def facts(self, cmd: Command) -> ContentFacts:
        if cmd.content_id not in self._facts:
            self._facts[cmd.content_id] = content_facts(self.s, cmd.content)
        return self._facts[cmd.content_id]

    def load(self, device_ids: list[str]) -> None:
        for chunk in chunks(device_ids):
            self._areas.update(self.s.execute(select(Device.id, Device.area_code).where(Device.id.in_(chunk))).all())
        for chunk in chunks(device_ids):
            for seg in self.s.scalars(select(AsRunSegment).where(
                    AsRunSegment.device_id.in_(chunk),
                    or_(AsRunSegment.outcome == O.PLAYING,
                        and_(AsRunSegment.outcome == O.INTERRUPTED, AsRunSegment.follow_up.is_(None))))
                    .order_by(AsRunSegment.id)):
                dev = self.devices.setdefault(seg.device_id, _Device(None))
                if seg.outcome == O.PLAYING:
                    if dev.open is not None:  # never two on air: keep the newest
                        self._close(dev.open, seg.started_at or seg.ended_at, O.FAILED, "superseded by a newer record")
                    dev.open = seg
                else:
                    dev.pending.append(seg)
        for did in device_ids:
            self.devices.setdefault(did, _Device(None))

    # -- what a device plays ---------------------------------------------------------------------
    def _match(self, device_id: str, source: str | None, activity: str) -> Command | None:
        """The newest play sent to the device whose content (or stream) the report shows."""
        rows = self.s.execute(select(Delivery.command_id).join(Command, Command.id == Delivery.command_id)
                              .where(Delivery.device_id == device_id, Command.verb.in_(arbiter_rule.PLAY_VERBS),
                                     or_(Delivery.state.in_((DeliveryState.SENT, DeliveryState.ACKED)),
                                         and_(Delivery.state == DeliveryState.QUEUED,
                                              Delivery.claimed_at.is_not(None))))
                              .order_by(Delivery.sent_at.desc(), Delivery.id.desc()).limit(50)).scalars()
        for cid in rows:
            cmd = self.command(cid)
            if cmd is not None and _plays(cmd, source, activity):
                return cmd
        return None

    def _stop_since(self, device_id: str, since: datetime | None) -> Command | None:
        q = (select(Delivery.command_id).join(Command, Command.id == Delivery.command_id)
             .where(Delivery.device_id == device_id, Command.verb.in_(_STOPS),
                    Delivery.state.in_((DeliveryState.SENT, DeliveryState.ACKED)))
             .order_by(Delivery.sent_at.desc()).limit(1))
        if since is not None:
            q = q.where(Delivery.sent_at >= since)
        return self.command(self.s.execute(q).scalar())

    def see(self, seen: Seen) -> None:
        dev = self.devices[seen.device_id]
        if seen.command_id is not None:
            cmd = self.command(seen.command_id)
            if cmd is None or cmd.verb not in arbiter_rule.PLAY_VERBS:
                return
        elif seen.activity in _ON_AIR:
            cur = self.command(dev.open.command_id) if dev.open is not None else None
            if cur is not None and _plays(cur, seen.source, seen.activity):
                return  # still the same item
            cmd = self._match(seen.device_id, seen.source, seen.activity)
            if cmd is None:
                if dev.open is not None:
                    self._end(dev, seen.at, None, f"the device played {seen.source!r}, which the hub did not send")
                return
        else:
            if dev.open is not None and seen.activity is not None:
                self._end(dev, seen.at, None, None, offline=seen.activity in ("offline", "off"))
            return
        if dev.open is not None and dev.open.command_id == cmd.id:
            return
        if dev.open is not None:
            self._end(dev, seen.at, cmd, None)
        self._open(dev, seen, cmd)

    def _end(self, dev: _Device, at: datetime, successor: Command | None, why: str | None,
             offline: bool = False) -> None:
        seg = dev.open
        assert seg is not None
        dev.open = None
        cmd = self.command(seg.command_id)
        ran = _ran_its_length(seg, cmd, at) if cmd is not None else None
        queued = successor is not None and arbiter_rule.decide(
            (successor.verb, successor.priority), (seg.verb, seg.priority)) == arbiter_rule.WAIT
        if successor is not None and not ran and not queued:  # (what waited behind it starts once it ended)
            higher = arbiter_rule.rank(successor.verb, successor.priority) > arbiter_rule.RANK[seg.rank]
            self._close(seg, at, O.INTERRUPTED if higher else O.STOPPED,
                        None if higher else f"replaced by a newer {successor.priority} item", successor)
            if higher:
                dev.pending.append(seg)
            return
        if queued and ran is False:  # what should have waited cut it short: the device broke the rule
            return self._close(seg, at, O.FAILED, f"cut short by a {successor.priority} item, which should have waited",
                               successor)
        if ran or successor is not None:
            return self._close(seg, at, O.FINISHED, None)
        if why is not None:
            return self._close(seg, at, O.STOPPED, why)
        stop = self._stop_since(seg.device_id, seg.started_at)
        if stop is not None and not (stop.verb == "relay_stop" and seg.verb == "relay_start"):
            return self._close(seg, at, O.STOPPED, None, stop)
        if offline:
            return self._close(seg, at, O.FAILED, "the device went off or offline while it played")
        if ran is False:
            return self._close(seg, at, O.FAILED, f"it ended after {(at - seg.started_at).total_seconds():.1f} s "
                                                  f"of its {_expected_s(cmd):.1f} s")
        self._close(seg, at, O.FINISHED, "ended by its relay_stop" if stop is not None else None)

    @staticmethod
    def _close(seg: AsRunSegment, at: datetime | None, outcome: str, reason: str | None,
               by: Command | None = None) -> None:
        seg.ended_at, seg.outcome, seg.reason = at, outcome, reason
        if by is not None:
            seg.interrupted_by, seg.interrupted_by_class = by.id, by.priority

    def _open(self, dev: _Device, seen: Seen, cmd: Command) -> None:
        origin = self.command(resume_origin(cmd)) or cmd
        facts = self.facts(cmd)
        seg = AsRunSegment(device_id=seen.device_id, command_id=cmd.id, verb=cmd.verb, content_id=cmd.content_id,
                           area_code=self._areas.get(seen.device_id), content_title=facts.title,
                           content_category=facts.category, content_origin=facts.origin,
                           source=seen.source, priority=cmd.priority, rank=arbiter_rule.rank_name(cmd.verb, cmd.priority),
                           started_at=seen.at, outcome=O.PLAYING, planned_start_at=origin.start_at,
                           planned_expires_at=origin.expires_at,
                           programme_key=origin.idempotency_key if origin.issuer == PROGRAMME_ISSUER else None)
        for p in list(dev.pending) + self._resuming(seen.device_id):
            if resume_origin(self.command(p.command_id) or cmd) == origin.id:
                p.follow_up, p.resumed_by = "resumed", cmd.id
                seg.resume_of = origin.id
                if p in dev.pending:
                    dev.pending.remove(p)
        self.s.add(seg)
        dev.open = seg

    def _resuming(self, device_id: str) -> list[AsRunSegment]:
        """Interrupted segments whose resume the hub sent (hub.delivery.resume)."""
        return list(self.s.scalars(select(AsRunSegment).where(AsRunSegment.device_id == device_id,
                                                               AsRunSegment.follow_up == "resuming")))

    # -- resume or skip ----------------------------------------------------------------------------
    def follow_up(self, device_id: str, now: datetime) -> None:
        dev = self.devices[device_id]
        on_air = arbiter_rule.RANK[dev.open.rank] if dev.open is not None else 0
        for seg in list(dev.pending):
            if on_air > arbiter_rule.RANK[seg.rank]:
                continue  # what outranks it still plays (a second emergency queued behind the first…)
            dev.pending.remove(seg)
            if not arbiter_rule.may_resume(seg.planned_expires_at, now):
                self._skip(seg, now, f"its slot closed at {seg.planned_expires_at.isoformat(timespec='seconds')}, "
                                     "before what interrupted it ended")
            elif on_air == arbiter_rule.RANK[seg.rank]:
                self._skip(seg, now, f"a newer {dev.open.priority} item plays in its place")
            elif device_id not in self.hub_arbitrated:
                self._skip(seg, now, "the device did not resume it while its slot was open")
            elif (waiting := self._waiting_rank(device_id, seg)) > arbiter_rule.RANK[seg.rank]:
                dev.pending.append(seg)  # a higher item the hub holds plays first (a second emergency…)
            elif waiting == arbiter_rule.RANK[seg.rank]:
                self._skip(seg, now, "a newer item of its class waits for the device")
            else:
                seg.follow_up = "resuming"
                self.resumes.append(ResumeDue(seg.id, device_id, resume_origin(self.command(seg.command_id)),
                                              seg.interrupted_by or ""))

    def _waiting_rank(self, device_id: str, seg: AsRunSegment) -> int:
        """The highest rank among plays waiting (queued, held) for the device: higher ones go
        first; one of the same rank that came after the interruption replaces the item."""
        rows = self.s.execute(select(Command.verb, Command.priority, Command.created_at)
                              .join(Delivery, Delivery.command_id == Command.id)
                              .where(Delivery.device_id == device_id, Delivery.state == DeliveryState.QUEUED,
                                     Command.verb.in_(arbiter_rule.PLAY_VERBS)))
        ranks = [arbiter_rule.rank(v, p) for v, p, at in rows
                 if arbiter_rule.rank(v, p) != arbiter_rule.RANK[seg.rank] or seg.started_at is None
                 or at > seg.started_at]
        return max(ranks, default=0)

    def _skip(self, seg: AsRunSegment, now: datetime, reason: str) -> None:
        seg.follow_up = "skipped"
        self.s.add(AsRunSegment(device_id=seg.device_id, command_id=seg.command_id, verb=seg.verb,
                                content_id=seg.content_id, source=seg.source, priority=seg.priority, rank=seg.rank,
                                area_code=seg.area_code, content_title=seg.content_title,
                                content_category=seg.content_category, content_origin=seg.content_origin,
                                started_at=None, ended_at=now, outcome=O.SKIPPED, reason=reason,
                                interrupted_by=seg.interrupted_by, interrupted_by_class=seg.interrupted_by_class,
                                planned_start_at=seg.planned_start_at, planned_expires_at=seg.planned_expires_at,
                                programme_key=seg.programme_key, resume_of=seg.resume_of or seg.command_id))


def record(session: Session, seen: list[Seen], hub_arbitrated: set[str], now: datetime) -> list[ResumeDue]:
    """Apply what was heard (in arrival order) to the as-run log; the resumes the hub must send
    for devices in `hub_arbitrated` (their segments say `resuming` until the resume plays)."""
    if not seen:
        return []
    rec = Recorder(session, hub_arbitrated)
    rec.load(sorted({s.device_id for s in seen}))
    for s in seen:
        rec.see(s)
    session.flush()  # segment ids, for the resumes
    for did in sorted({s.device_id for s in seen}):
        rec.follow_up(did, now)
    session.flush()
    return rec.resumes


def observations(kind: str, device_id: str, value: Any, at: datetime) -> Seen | None:
    """A Seen from one ingest item (ack: hub.vendor.Ack; status: a status dict; presence: bool)."""
    if kind == "ack":
        detail = value.detail or {}
        if value.ok and detail.get("activity") in _ON_AIR and not detail.get(ACK_QUEUED):
            return Seen(device_id, at, detail.get("activity"), command_id=value.command_id)
        return None
    if kind == "status" and "activity" in value:
        return Seen(device_id, at, value.get("activity"), value.get("source"))
    if kind == "presence" and value is False:
        return Seen(device_id, at, "offline")
    return None
