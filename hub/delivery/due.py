"""The rq job that publishes scheduled commands at their start (hub.delivery.release releases them).

One job carries every command of one vendor and priority class due in the scheduler's window.
It loads the rows, builds the envelopes and opens the adapter first, then sleeps until each
start and hands the transport everything due at that instant in one adapter call. The results
are written by a second thread, so a slow database never delays the next start. Failures follow
send_batch's rules: transient ones are retried with the same backoff (after the timed pass),
the others end the row; a command past its expires_at ends `expired`; one cancelled meanwhile
(heard on Redis) is skipped — its rows already say `superseded`.
"""
from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from hub.delivery.claims import claim, job_token
from hub.store.batching import chunks
from hub.store.db import utcnow
from hub.delivery.states import finish, job_tally
from hub.delivery.jobs import _send, attempt_once, count_attempt, device_ref, envelope_for, record_results
from hub.store.models import Command, DeliveryState
from hub.runtime import Runtime, get_runtime
from hub.delivery.release import CancelWatch
from hub.vendor import Outgoing, Result

log = logging.getLogger(__name__)


@dataclass
class _Due:
    command_id: str
    start: datetime
    expires_at: datetime
    items: list[Outgoing]
    ids: dict[str, int]  # device id → delivery id


@dataclass
class _Sent:
    results: list[Result]
    ids: dict[str, int]  # device id → delivery id, for this one adapter call
    command_of: dict[int, str]  # delivery id → command id
    handed_at: datetime
    expired: list[int] = field(default_factory=list)


def send_due(vendor: str, items: list[list[Any]], rt: Runtime | None = None) -> dict[str, int]:
    """Publish each command of `items` ([command id, start_at ISO, [delivery ids]]) at its
    start_at. Returns how many rows ended in each state in this job (and how many were skipped
    because their command was cancelled while the job held it)."""
    rt = rt or get_runtime()
    tally = job_tally("cancelled")
    watch = CancelWatch(rt)  # before loading rows: a cancel is then either in the rows or heard
    try:
        plan = _prepare(rt, items)
        if not plan:
            return tally
        try:
            rt.adapter(vendor)  # connect now rather than at the first start
        except Exception as exc:  # _send opens it again at the start and reports the failure per row
            log.warning("adapter %s not ready ahead of scheduled commands: %s", vendor, exc)
        recorder = _Recorder(rt, vendor, tally)
        # Every wake-up of the publishing thread (end of a sleep, a PUBACK) waits for the GIL up to
        # the switch interval (5 ms) while another thread runs Python: measured as ~15 ms of lag per
        # start with 1,000 starts in a second. A shorter interval for the timed pass only.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, 0.0005))
        try:
            _publish_on_time(rt, vendor, plan, watch, recorder, tally)
        finally:
            sys.setswitchinterval(interval)
            retries = recorder.close()
        # Retries as send_batch does them, but for all the job's commands at each step: one
        # backoff sleep per attempt, not one per command (a broker down at 07:00 fails them all).
        for attempt, delay in enumerate(rt.settings.retry_backoff_s, start=2):
            if not retries:
                break
            log.info("%d scheduled commands via %s: %d devices to retry in %.1fs", len(retries), vendor,
                     sum(map(len, retries.values())), delay)
            time.sleep(delay)
            retries = {cid: again for cid, dids in retries.items()
                       if (again := attempt_once(rt, cid, vendor, dids, attempt, tally))}
        return tally
    finally:
        watch.close()


def _prepare(rt: Runtime, items: list[list[Any]]) -> list[_Due]:
    cids = [it[0] for it in items]
    with rt.db.session() as s:
        cmds = {c.id: c for chunk in chunks(cids)
                for c in s.scalars(select(Command).where(Command.id.in_(chunk)))}
        rows = claim(s, [d for it in items for d in it[2]], job_token())
    by_cmd: dict[str, list[Any]] = defaultdict(list)
    for d, dev in rows:
        by_cmd[d.command_id].append((d.id, dev))
    plan = []
    for cid, start_iso, _ in items:
        cmd = cmds.get(cid)
        if cmd is None or not by_cmd.get(cid):
            continue  # vanished, cancelled or superseded before this job ran
        env = envelope_for(cmd, rt)
        plan.append(_Due(cid, cmd.start_at or datetime.fromisoformat(start_iso), cmd.expires_at,
                         [Outgoing(device_ref(dev), env) for _, dev in by_cmd[cid]],
                         {dev.id: did for did, dev in by_cmd[cid]}))
    plan.sort(key=lambda d: d.start)
    return plan


def _publish_on_time(rt: Runtime, vendor: str, plan: list[_Due], watch: CancelWatch, recorder: _Recorder,
                     tally: dict[str, int]) -> None:
    size = rt.settings.batch_size  # the adapter's in-flight window: never hand it more at once
    calls: list[tuple[int, float]] = []  # (rows, seconds) per adapter call, for the log line

    def hand(batch: list[Outgoing], ids: dict[str, int], command_of: dict[int, str]) -> None:
        handed_at = utcnow()  # the row's sent_at: start jitter is sent_at − start_at
        t = time.perf_counter()
        results = _send(rt, vendor, batch)
        calls.append((len(batch), time.perf_counter() - t))
        recorder.put(_Sent(results, ids, command_of, handed_at))

    i = 0
    while i < len(plan):
        wait = (plan[i].start - utcnow()).total_seconds()
        recorder.next_start = time.monotonic() + wait
        if wait > 0:
            time.sleep(wait)
        now = utcnow()
        batch: list[Outgoing] = []
        ids: dict[str, int] = {}
        command_of: dict[int, str] = {}
        # everything due by now goes in one call: if a call was slow, the next catches up at once
        while i < len(plan) and plan[i].start <= now:
            due = plan[i]
            i += 1
            if due.command_id in watch:
                tally["cancelled"] += len(due.items)
                continue
            if due.expires_at <= now:
                recorder.put(_Sent([], {}, {}, now, expired=list(due.ids.values())))
                continue
            for out in due.items:
                # results name devices, so one call never carries the same device twice
                if out.device.id in ids or len(batch) >= size:
                    hand(batch, ids, command_of)
                    batch, ids, command_of = [], {}, {}
                did = due.ids[out.device.id]
                batch.append(out)
                ids[out.device.id] = did
                command_of[did] = due.command_id
        if batch:
            hand(batch, ids, command_of)
    recorder.next_start = None
    if calls:
        took = sorted(c for _, c in calls)
        log.info("%s: %d scheduled commands, %d rows in %d adapter calls (median %.1f ms, max %.1f ms)", vendor,
                 len(plan), sum(n for n, _ in calls), len(calls), 1000 * took[len(took) // 2], 1000 * took[-1])


class _Recorder:
    """Writes results on its own thread; collects the rows worth retrying, by command. It writes
    only when the next start is at least `scheduler_quiet_s` away: its Python work (SQLAlchemy) would take
    the GIL from the publishing thread right when that needs it. Dense starts are written after."""

    def __init__(self, rt: Runtime, vendor: str, tally: dict[str, int]) -> None:
        self.rt, self.vendor, self.tally = rt, vendor, tally
        self.next_start: float | None = None  # monotonic time of the publisher's next start
        self.retries: dict[str, list[int]] = defaultdict(list)
        self._q: queue.SimpleQueue[_Sent | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="hub-due-recorder", daemon=True)
        self._thread.start()

    def put(self, sent: _Sent) -> None:
        self._q.put(sent)

    def close(self) -> dict[str, list[int]]:
        self._q.put(None)
        self._thread.join()
        return dict(self.retries)

    def _run(self) -> None:
        quiet_s = self.rt.settings.scheduler_quiet_s
        done = False
        while not done:
            batch = [self._q.get()]
            while True:  # write whatever piled up in one transaction
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            done = batch[-1] is None
            while not done and self.next_start is not None and self.next_start - time.monotonic() < quiet_s:
                time.sleep(0.05)
            work = [b for b in batch if b is not None]
            if work:
                self._write(work)

    def _write(self, work: list[_Sent]) -> None:
        retries = len(self.rt.settings.retry_backoff_s)
        for attempt in range(5):
            try:
                with self.rt.db.session() as s:
                    tally = dict.fromkeys(self.tally, 0)
                    again: list[tuple[str, int]] = []
                    for w in work:
                        if w.expired:
                            gone = [(d, DeliveryState.EXPIRED, "expired before it could be sent", None)
                                    for d in w.expired]
                            tally[DeliveryState.EXPIRED] += finish(s, gone)
                            continue
                        count_attempt(s, list(w.ids.values()))
                        for r in record_results(s, self.vendor, w.results, w.ids, 1, retries, w.handed_at,
                                                tally):
                            did = w.ids[r.device_id]
                            again.append((w.command_of[did], did))
                for k, v in tally.items():
                    self.tally[k] += v
                for cid, did in again:
                    self.retries[cid].append(did)
                return
            except Exception:  # the database is busy or away: the rows stay queued until it answers
                log.exception("recording scheduled sends failed (attempt %d of 5)", attempt + 1)
                time.sleep(0.5 * (attempt + 1))
        log.error("gave up recording %d sends of %s; their rows stay queued and the sweeper may send them again",
                  len(work), self.vendor)
