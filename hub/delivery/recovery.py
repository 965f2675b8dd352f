"""Work whose job was lost or died: find the `queued` rows no live job holds, and enqueue them again.

A row is orphaned when no job waiting or running (rq's queue, intermediate queue and started
registry) carries it, and it is not claimed by such a job. A started job whose worker stopped
heartbeating is not live: reading the started registry runs rq's cleanup, which moves such an
abandoned job to the failed registry (HubWorker heartbeats every few seconds while a job runs,
so that happens about ten seconds after a worker is killed).

When to look: rows of the emergency class once they have been queued `emergency_requeue_after_s`
(the ingest's sweeper asks every sweep), every other row after `requeue_after_s` (asked every
few seconds). A command scheduled and released ahead of its start is never orphaned before its
start (its job sleeps until then).

Rows claimed by a dead job (hub.delivery.claims) may already be on their devices: the recovery gives them
to the new job (claimed_by = its id) before enqueueing it, so that supersede still leaves them
alone and the new job may send them. A device may then get a command twice; devices treat a
repeated command id as done (QoS 1 is at-least-once anyway).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from hub.capabilities import EMERGENCY
from hub.delivery import job_paths
from hub.store.batching import chunks
from hub.store.db import utcnow
from hub.store.models import Command, Delivery, DeliveryState
from hub.runtime import JOB_SERIALIZER, Runtime

log = logging.getLogger(__name__)


def live_jobs(rt: Runtime) -> tuple[set[str], set[int], set[str]]:
    """(ids of the jobs waiting or running, delivery ids they carry, command ids of jobs whose
    rows are not named — none today, kept for jobs of an older hub)."""
    from rq.exceptions import DeserializationError
    from rq.job import Job
    from rq.registry import StartedJobRegistry

    ids: set[str] = set()
    for q in rt.queues():
        ids.update(q.get_job_ids())
        ids.update(StartedJobRegistry(queue=q).get_job_ids())  # cleanup=True: abandoned ones leave
        try:
            ids.update(q.intermediate_queue.get_job_ids())  # popped, not yet registered as started
        except AttributeError:  # an rq without the intermediate queue
            pass
    rows: set[int] = set()
    commands: set[str] = set()
    listed = sorted(ids)
    for job in Job.fetch_many(listed, connection=rt.redis, serializer=JOB_SERIALIZER) if listed else []:
        try:
            func, args = (job.func_name, job.args) if job is not None else (None, ())
        except DeserializationError:  # pickled by an older hub: no worker runs it, so it holds nothing
            log.error("job %s is not JSON and will not run; its queued rows are enqueued again", job.id)
            continue
        if not args:
            continue
        func = job_paths.current(func)  # a job an earlier release enqueued holds rows too
        if func == job_paths.SEND_BATCH and len(args) >= 3:
            rows.update(args[2])
        elif func == job_paths.SEND_DUE and len(args) >= 2:
            for item in args[1]:
                rows.update(item[2])
        elif func == job_paths.SEND_BATCH:
            commands.add(args[0])
    return ids, rows, commands


def requeue_orphans(rt: Runtime, now: datetime | None = None, emergency_only: bool = False) -> int:
    """Enqueue again the `queued` rows no live job holds (this module's docstring says when).
    Returns the jobs enqueued. Redis down: raises; the sweeper asks again."""
    from hub.delivery.dispatch import _jobs

    st = rt.settings
    now = now or utcnow()
    fast = now - timedelta(seconds=st.emergency_requeue_after_s)
    slow = now - timedelta(seconds=st.requeue_after_s)
    due = and_(Command.priority == EMERGENCY, Delivery.queued_at <= fast)
    with rt.db.session() as s:
        found = s.execute(
            select(Delivery.id, Delivery.command_id, Delivery.vendor, Delivery.claimed_by, Delivery.queued_at)
            .join(Command, Command.id == Delivery.command_id)
            .where(Delivery.state == DeliveryState.QUEUED, Command.expires_at > now,
                   # a released scheduled command's job sleeps until its start: not lost before then
                   or_(Command.start_at.is_(None), Command.start_at <= now),
                   due if emergency_only else or_(due, Delivery.queued_at <= slow))
            .order_by(Delivery.id)).all()
    if not found:
        return 0
    job_ids, carried, commands = live_jobs(rt)
    orphans: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for did, cid, vendor, claimed_by, queued_at in found:
        if did in carried or cid in commands or (claimed_by is not None and claimed_by in job_ids):
            continue
        if claimed_by is not None and claimed_by.startswith("local-") and queued_at > slow:
            continue  # sent outside rq (tests, tools): no registry says whether it still runs
        orphans[cid][vendor].append((did, claimed_by))
    enqueued = 0
    for cid, by_vendor in orphans.items():
        with rt.db.session() as s:
            cmd = s.get(Command, cid)
            if cmd is None:
                continue
            jobs = _jobs(rt, cmd, {v: [did for did, _ in rows] for v, rows in by_vendor.items()})
            held = {did: by for rows in by_vendor.values() for did, by in rows}
            for job in jobs:
                _hand_over(s, job.job_id, {did: held[did] for did in job.args[2] if held.get(did)})
        # committed first: a job that starts before its claims are handed over would skip them
        rt.queue(cmd.priority).enqueue_many(jobs)
        log.warning("command %s had %d queued deliveries no live job held (lost or its worker died); "
                    "enqueued %d jobs again", cid, sum(map(len, by_vendor.values())), len(jobs))
        enqueued += len(jobs)
    return enqueued


def _hand_over(s: Any, job_id: str, held: dict[int, str]) -> None:
    """Give rows claimed by dead jobs to `job_id` (each only if still claimed by the same one)."""
    by_token: dict[str, list[int]] = defaultdict(list)
    for did, token in held.items():
        by_token[token].append(did)
    for token, ids in by_token.items():
        for chunk in chunks(ids):
            s.execute(update(Delivery).where(Delivery.id.in_(chunk), Delivery.state == DeliveryState.QUEUED,
                                             Delivery.claimed_by == token)
                      .values(claimed_by=job_id).execution_options(synchronize_session=False))
