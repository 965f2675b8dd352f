"""Scheduled commands: release them to the workers a lead time before they start.

A command submitted with a start_at in the future keeps its deliveries `scheduled`. One
scheduler loop (`hub scheduler`, or a thread of the embedded demo) holds a Redis lock so that only
one instance releases; `scheduler_lead_s` before a command's start it takes every command due in
the next `scheduler_window_s`, flips their rows `scheduled → queued` (a conditional UPDATE, so two
instances can never release a row twice even without the lock) and enqueues, per vendor and
priority queue, ONE `hub.delivery.due.send_due` job carrying all of them. The worker prepares the rows,
payloads and adapter connection, then publishes each command at its start_at: a thousand slots
due in the same second are one job per vendor, not a thousand jobs queued behind each other.

A scheduler that was down catches up when it starts: overdue commands are released at once (their
sent_at − start_at shows how late), and those whose expires_at has passed end `expired` with a
reason that says so. The ingest's sweeper expires them too if no scheduler runs at all.
"""
from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from hub.delivery import job_paths
from hub.store.batching import chunks
from hub.store.db import utcnow
from hub.store.content_tables import ContentStatus
from hub.store.models import Command, Content, Delivery, DeliveryState
from hub.runtime import Runtime

log = logging.getLogger(__name__)

DUE_JOB_PREFIX = "hubdue-"  # not "hub-<command>-…": a send_due job names several commands in its args


def _channel(rt: Runtime, what: str) -> str:
    return f"{rt.settings.queue}.scheduler.{what}"


def wake(rt: Runtime) -> None:
    """Tell a sleeping scheduler that a command was scheduled (it may start sooner than the next
    one it knew). Best effort: the scheduler also polls every `scheduler_poll_s`."""
    try:
        rt.redis.publish(_channel(rt, "wake"), b"1")
    except Exception as exc:  # Redis down: the command stays scheduled; the poll finds it
        log.warning("could not wake the scheduler: %s", exc)


def announce_cancel(rt: Runtime, command_id: str) -> None:
    """Tell workers holding a released command not to publish it (see CancelWatch)."""
    try:
        rt.redis.publish(_channel(rt, "cancel"), command_id.encode())
    except Exception as exc:  # the rows already say superseded; a worker that misses this may still send
        log.error("could not announce the cancel of %s to workers: %s", command_id, exc)


@dataclass
class Released:
    commands: int = 0
    deliveries: int = 0
    jobs: int = 0
    expired: int = 0
    withdrawn: int = 0  # deliveries never sent because their content was no longer published at release
    late_s: float = 0.0  # how late the most overdue released command was (0 when on time)
    job_ids: list[str] = field(default_factory=list)


_COUNTED = tuple(f.name for f in fields(Released) if f.type == "int")  # what Scheduler.stats adds up


def next_start(rt: Runtime) -> datetime | None:
    """The earliest start_at of a command not yet released (nor cancelled)."""
    with rt.db.session() as s:
        return s.scalar(select(func.min(Command.start_at)).where(
            Command.start_at.is_not(None), Command.released_at.is_(None), Command.cancelled_at.is_(None)))


def release_due(rt: Runtime, now: datetime | None = None) -> Released:
    """Release every command starting before now + lead + window: one send_due job per
    (priority, vendor). Overdue ones go at once; those past their expires_at end `expired`."""
    st = rt.settings
    now = now or utcnow()
    until = now + timedelta(seconds=st.scheduler_lead_s + st.scheduler_window_s)
    out = Released()
    with rt.db.session() as s:
        due = s.execute(select(Command.id, Command.priority, Command.start_at, Command.expires_at).where(
            Command.start_at.is_not(None), Command.released_at.is_(None), Command.cancelled_at.is_(None),
            Command.start_at <= until).order_by(Command.start_at)).all()
        if not due:
            return out
        claimed: set[str] = set()
        for chunk in chunks(due):  # claim: another instance's UPDATE gets none of these rows
            ids = [r.id for r in chunk]
            claimed.update(s.scalars(update(Command).where(Command.id.in_(ids), Command.released_at.is_(None))
                                     .values(released_at=now).returning(Command.id)
                                     .execution_options(synchronize_session=False)))
        due = [r for r in due if r.id in claimed]
        # A content archived (or sent back) after the command was scheduled is not played: the
        # dispatcher's "published only" holds at the start too, not only when the command was made.
        unpublished: dict[str, str] = {}
        for chunk in chunks([r.id for r in due]):
            unpublished.update((cid, status) for cid, status in s.execute(
                select(Command.id, Content.status).join(Content, Content.id == Command.content_id)
                .where(Command.id.in_(chunk), Content.status.is_not(None), Content.status != ContentStatus.PUBLISHED)))
        for cid, status in unpublished.items():
            out.withdrawn += s.execute(
                update(Delivery).where(Delivery.command_id == cid, Delivery.state == DeliveryState.SCHEDULED)
                .values(state=DeliveryState.SUPERSEDED, finished_at=now,
                        reason=f"its content became {status} before the start: only a published content is sent")
                .execution_options(synchronize_session=False)).rowcount or 0
        due = [r for r in due if r.id not in unpublished]
        dead = [r.id for r in due if r.expires_at <= now]
        live = {r.id: r for r in due if r.expires_at > now}
        for chunk in chunks(dead):
            out.expired += s.execute(
                update(Delivery).where(Delivery.command_id.in_(chunk), Delivery.state == DeliveryState.SCHEDULED)
                .values(state=DeliveryState.EXPIRED, finished_at=now,
                        reason="start_at passed while no scheduler was running, and expires_at too; never sent")
                .execution_options(synchronize_session=False)).rowcount or 0
        rows: list[Any] = []
        ids = list(live)
        for chunk in chunks(ids):
            # queued_at = release time: the sweeper's requeue_stale waits requeue_after_s from here
            rows += s.execute(update(Delivery).where(Delivery.command_id.in_(chunk),
                                                     Delivery.state == DeliveryState.SCHEDULED)
                              .values(state=DeliveryState.QUEUED, queued_at=now)
                              .returning(Delivery.id, Delivery.command_id, Delivery.vendor)
                              .execution_options(synchronize_session=False)).all()
    out.commands = len(due)
    out.deliveries = len(rows)
    if live:
        out.late_s = max(0.0, max((now - r.start_at).total_seconds() for r in live.values()))
    groups: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for did, cid, vendor in rows:
        groups[(live[cid].priority, vendor)][cid].append(did)
    for (priority, vendor), by_cmd in groups.items():
        items = sorted(([cid, live[cid].start_at.isoformat(), sorted(dids)] for cid, dids in by_cmd.items()),
                       key=lambda it: it[1])
        try:
            out.job_ids.append(_enqueue_due(rt, priority, vendor, items))
            out.jobs += 1
        except Exception as exc:  # Redis down: put the rows back; the next pass releases them again
            log.error("could not enqueue %d scheduled commands for %s: %s; will retry", len(items), vendor, exc)
            _unrelease(rt, items)
    if out.expired:
        log.warning("%d deliveries of %d scheduled commands expired before release (scheduler was down?)",
                    out.expired, len(dead))
    if out.late_s > 1.0:
        log.warning("released %d scheduled commands up to %.1f s after their start (scheduler was down?)",
                    out.commands, out.late_s)
    return out


def _enqueue_due(rt: Runtime, priority: str, vendor: str, items: list[list[Any]]) -> str:
    st = rt.settings
    queue = rt.queue(priority)
    n = sum(len(it[2]) for it in items)
    last = datetime.fromisoformat(items[-1][1])
    span = max(0.0, (last - utcnow()).total_seconds())
    job_id = f"{DUE_JOB_PREFIX}{secrets.token_hex(8)}"
    # at the front: a scheduled job must not wait behind immediate batches queued before it
    data = queue.prepare_data(job_paths.SEND_DUE, args=(vendor, items), at_front=True,
                              timeout=int(span + sum(st.retry_backoff_s) + 120), result_ttl=3600,
                              failure_ttl=7 * 86400, job_id=job_id,
                              description=f"{len(items)} scheduled commands ({n} deliveries) via {vendor}")
    queue.enqueue_many([data])
    return job_id


def _unrelease(rt: Runtime, items: list[list[Any]]) -> None:
    cids = [it[0] for it in items]
    dids = [d for it in items for d in it[2]]
    with rt.db.session() as s:
        for chunk in chunks(dids):
            s.execute(update(Delivery).where(Delivery.id.in_(chunk), Delivery.state == DeliveryState.QUEUED)
                      .values(state=DeliveryState.SCHEDULED).execution_options(synchronize_session=False))
        s.execute(update(Command).where(Command.id.in_(cids)).values(released_at=None)
                  .execution_options(synchronize_session=False))


class Leadership:
    """A Redis key held with a TTL and renewed: the instance holding it releases commands.
    Check-and-renew uses WATCH/MULTI rather than a Lua script, which fakeredis (embedded mode)
    cannot run without an extra package."""

    def __init__(self, rt: Runtime, token: str, ttl_s: float | None = None) -> None:
        # a leader that stops renewing (killed, partitioned) is replaced after scheduler_lock_ttl_s
        ttl_s = rt.settings.scheduler_lock_ttl_s if ttl_s is None else ttl_s
        self.rt, self.token, self.ttl_ms = rt, token.encode(), int(ttl_s * 1000)
        self.key = _channel(rt, "leader")
        self.held = False

    def hold(self) -> bool:
        """Take the lock if free, renew it if ours; whether we hold it now."""
        r = self.rt.redis
        if r.set(self.key, self.token, nx=True, px=self.ttl_ms):
            self.held = True
            return True
        with r.pipeline() as p:
            try:
                p.watch(self.key)
                if p.get(self.key) != self.token:
                    p.unwatch()
                    self.held = False
                    return False
                p.multi()
                p.pexpire(self.key, self.ttl_ms)
                p.execute()
                self.held = True
            except Exception as exc:  # WatchError: it changed hands meanwhile; Redis errors: not leader
                log.debug("scheduler lock not renewed: %s", exc)
                self.held = False
        return self.held

    def release(self) -> None:
        r = self.rt.redis
        with r.pipeline() as p:
            try:
                p.watch(self.key)
                if p.get(self.key) == self.token:
                    p.multi()
                    p.delete(self.key)
                    p.execute()
                else:
                    p.unwatch()
            except Exception as exc:  # the TTL frees it anyway
                log.debug("scheduler lock not released: %s", exc)
        self.held = False


class Scheduler:
    """The release loop. `run()` blocks until `stop()`; `start()` runs it in a thread."""

    def __init__(self, rt: Runtime, name: str | None = None) -> None:
        self.rt = rt
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.lock = Leadership(rt, self.name)
        self.stats = {"passes": 0, **dict.fromkeys(_COUNTED, 0)}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Scheduler:
        self._thread = threading.Thread(target=self.run, name="hub-scheduler", daemon=True)
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        pubsub = None
        next_pass = 0.0  # monotonic time of the next look at the database
        was_leader: bool | None = None  # so that the first state is logged too
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self.rt.redis.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(_channel(self.rt, "wake"))
                leader = self.lock.hold()
                if leader != was_leader:
                    log.info("scheduler %s %s", self.name, "leads: releasing scheduled commands" if leader
                             else "is standing by (another instance leads)")
                    was_leader = leader
                    next_pass = 0.0
                if leader and time.monotonic() >= next_pass:
                    next_pass = time.monotonic() + self.pass_once()
                # Wait for a wake-up, the next due time, or the lock's renewal, whichever is first;
                # a follower just tries for the lock again a second later.
                wait = min(max(0.0, next_pass - time.monotonic()) if leader else 1.0, self.lock.ttl_ms / 4000, 1.0)
                if pubsub.get_message(timeout=wait) is not None:
                    while pubsub.get_message(timeout=0) is not None:
                        pass  # a burst of submits is one look, not one each
                    next_pass = min(next_pass, time.monotonic() + 0.05)  # a new scheduled command: look soon
            except Exception:  # Redis or database hiccup: say so, keep going
                log.exception("scheduler pass failed; retrying in 1 s")
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # already broken
                        pass
                pubsub = None
                self._stop.wait(1.0)
        if pubsub is not None:
            pubsub.close()
        try:
            self.lock.release()
        except Exception:  # the TTL frees it anyway
            pass

    def pass_once(self) -> float:
        """Release what is due; seconds until the next look (a lead time before the next start)."""
        st = self.rt.settings
        res = release_due(self.rt)
        self.stats["passes"] += 1
        for k in _COUNTED:
            self.stats[k] += getattr(res, k)
        if res.commands:
            log.info("released %d scheduled commands (%d deliveries) in %d jobs%s", res.commands, res.deliveries,
                     res.jobs, f"; {res.expired} deliveries expired unsent" if res.expired else "")
        nxt = next_start(self.rt)
        if nxt is None:
            return st.scheduler_poll_s
        # never less than 0.2 s: a release that failed (Redis down) is retried, not spun on
        return min(st.scheduler_poll_s, max(0.2, (nxt - utcnow()).total_seconds() - st.scheduler_lead_s))


class CancelWatch:
    """Inside a send_due job: the ids of commands cancelled while the job holds them, heard on
    Redis. Subscribed before the job loads its rows, so a cancel is either seen in the database
    (its rows are no longer queued) or heard here."""

    def __init__(self, rt: Runtime) -> None:
        self.ids: set[str] = set()
        self._stop = threading.Event()
        self._pubsub: Any = None
        self._thread: threading.Thread | None = None
        try:
            ps = rt.redis.pubsub()
            ps.subscribe(_channel(rt, "cancel"))
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:  # wait for the server's confirmation
                msg = ps.get_message(timeout=0.2)
                if msg is not None and msg.get("type") == "subscribe":
                    break
            self._pubsub = ps
            self._thread = threading.Thread(target=self._listen, name="hub-cancel-watch", daemon=True)
            self._thread.start()
        except Exception as exc:  # without Redis the job has bigger problems; cancels still end rows
            log.warning("cannot listen for cancels: %s", exc)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._pubsub.get_message(timeout=0.2)
            except Exception:  # connection lost: stop listening; rows already say cancelled
                return
            if msg is not None and msg.get("type") == "message":
                data = msg["data"]
                self.ids.add(data.decode() if isinstance(data, bytes) else str(data))

    def __contains__(self, command_id: object) -> bool:
        return command_id in self.ids

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:  # nothing to do about it
                pass
