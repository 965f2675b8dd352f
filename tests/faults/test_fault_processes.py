"""Faults of the hub's own processes and its database, each on its own broker and Redis:
(c) a worker killed with SIGKILL mid-batch, then a new worker;
(e) the database locked for seconds while acks arrive.

Run with -s to see each scenario's figures."""
from __future__ import annotations

import logging
import os
import signal
import sqlite3
import time
from datetime import timedelta

import pytest
from rq import Queue
from rq.registry import StartedJobRegistry
from sqlalchemy import event

from hub.access.actors import LOCAL_ADMIN
from hub.store.db import Database, utcnow
from hub.delivery.dispatch import submit
from hub.delivery.ingest import Ingest
from hub.runtime import Runtime
from hub.schemas import CommandSchema
from tests.support.processes import wait_until

from tests.support.fault_services import dump_logs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


def _send(rt, raw: dict):
    return submit(rt, LOCAL_ADMIN, CommandSchema().load(raw))


def _db_path(h) -> str:
    return h.settings.database_url.removeprefix("sqlite:///")


class WriteLock:
    """Another connection holding SQLite's write lock (readers go on: the hub runs WAL)."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)

    def __enter__(self) -> WriteLock:
        self.conn.execute("BEGIN EXCLUSIVE")
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def _started(h, priority: str = "emergency") -> list[str]:
    q = Queue(h.rt.queue_name(priority), connection=h.rt.redis)
    return StartedJobRegistry(queue=q).get_job_ids(cleanup=False)


def test_fault_worker_killed_before_publishing(fault_hub) -> None:
    """The worker takes a batch, then blocks on the database (write lock) before publishing
    and is killed with SIGKILL. Its job stays "started" in rq until its heartbeat lapses
    (HubWorker heartbeats while a job runs, so ~20 s rather than the job timeout); rq's cleanup
    then fails it as abandoned and the ingest's sweeper enqueues the still-queued rows again.
    The other batches are taken by the new worker at once."""
    h = fault_hub(batch_size=100)
    addresses = h.register(300)
    h.start_fleet(addresses)
    h.start("ingest")
    h.wait_online(300)
    w1 = h.start("worker")
    wait_until(lambda: "Listening on" in w1.output(), 20, "worker-1 to listen", h.live())
    os.killpg(w1.p.pid, signal.SIGSTOP)
    sub = _send(h.rt, {"verb": "set_volume", "params": {"level": 12}, "priority": "emergency",
                       "expires_at": (utcnow() + timedelta(seconds=90)).isoformat(), "target": {"areas": ["27694"]}})
    with WriteLock(_db_path(h)):
        os.killpg(w1.p.pid, signal.SIGCONT)
        wait_until(lambda: _started(h), 10, "worker-1 to start a batch")
        time.sleep(1.0)  # it read its rows and waits for the write lock
        h.kill9("worker-1")
        killed_at = time.monotonic()
    c = h.counts(sub.command.id)
    assert c["queued"] == 300, c  # nothing was published: the kill came before
    h.start("worker")
    rows = h.wait_terminal(sub.command.id, timeout=75)
    recovered_after = time.monotonic() - killed_at
    fig = h.figures("c1: worker killed before publishing", sub.command.id, rows,
                    recovered_after_s=round(recovered_after, 1))
    h.check_consistent(sub.command.id, rows)
    assert fig["acked"] == 300, dump_logs(h)
    assert fig["duplicates"] == 0


def test_fault_worker_killed_between_publish_and_sent_mark(fault_hub) -> None:
    """The broker is paused while the worker publishes a batch of 100, so the worker waits for
    PUBACKs (before it marks the rows sent) and is killed with SIGKILL there. When the broker
    resumes it may still deliver what the dead worker had written to its socket. The rows are
    still `queued`, so the recovery sends them again: a device that got the first copy gets a
    second one (same command id; it answers again and acts once). Devices ack 25 s late here,
    so the resend always comes before their first ack: the duplicates are counted exactly."""
    h = fault_hub(batch_size=100)
    addresses = h.register(100)
    fleet = h.start_fleet(addresses, ack_delay_s=25.0)
    h.start("ingest")
    h.wait_online(100)
    w1 = h.start("worker")
    wait_until(lambda: "Listening on" in w1.output(), 20, "worker-1 to listen", h.live())
    # warm up: the worker's MQTT connection is open before the broker pauses
    warm = _send(h.rt, {"verb": "set_volume", "params": {"level": 13}, "target": {"devices": [addresses[0].upper()]}})
    wait_until(lambda: h.counts(warm.command.id)["sent"] == 1, 15, "the warm-up to be sent", h.live())
    h.broker.pause()
    try:
        sub = _send(h.rt, {"verb": "set_volume", "params": {"level": 14}, "priority": "emergency",
                           "expires_at": (utcnow() + timedelta(seconds=100)).isoformat(),
                           "target": {"areas": ["27694"]}})
        wait_until(lambda: _started(h), 10, "worker-1 to start the batch")
        time.sleep(1.5)  # publishes written, PUBACKs awaited
        h.kill9("worker-1")
    finally:
        h.broker.resume()
    time.sleep(1.0)
    first = sum(1 for n in h.received(sub.command.id).values() if n)
    c = h.counts(sub.command.id)
    assert c["queued"] == 100, c
    h.start("worker")
    rows = h.wait_terminal(sub.command.id, timeout=90)
    fig = h.figures("c2: worker killed between publish and sent mark", sub.command.id, rows,
                    received_before_recovery=first)
    h.check_consistent(sub.command.id, rows)
    assert fig["acked"] == 100, dump_logs(h)
    # only devices that got the dead worker's copy may have a second one, and at most one
    assert fig["duplicates"] == first
    assert all(n <= 2 for n in h.received(sub.command.id).values())
    # every device acted once: volume set, one non-duplicate record
    assert all(fleet.device(a).volume == 14 for a in addresses)


def test_fault_database_locked_while_acks_arrive(fault_hub, caplog) -> None:
    """The ingest (in process, with a 0.2 s busy timeout so a lock makes its flush fail rather
    than wait) hears 100 acks while another connection holds the database's write lock for 5 s.
    Each failed flush puts its items back; once the lock goes they are all applied."""
    h = fault_hub()
    addresses = h.register(100)
    h.start_fleet(addresses, ack_delay_s=2.0)
    db = Database(h.settings.database_url)

    @event.listens_for(db.engine, "connect")
    def _short_busy(dbapi_conn, _record):  # noqa: ANN001 — runs after the hub's own pragmas
        dbapi_conn.execute("PRAGMA busy_timeout=200")

    irt = Runtime(h.settings, db=db, plugins=h.rt.plugins)
    ing = Ingest(irt)
    failures = {"flush": 0}
    real_write = ing._write

    def counting_write(items):
        try:
            return real_write(items)
        except Exception:
            failures["flush"] += 1
            raise
    ing._write = counting_write
    ing.start()
    try:
        h.wait_online(100)
        w = h.start("worker")
        wait_until(lambda: "Listening on" in w.output(), 20, "the worker to listen", h.live())
        sub = _send(h.rt, {"verb": "set_volume", "params": {"level": 55},
                           "expires_at": (utcnow() + timedelta(seconds=40)).isoformat(),
                           "target": {"areas": ["27694"]}})
        wait_until(lambda: h.counts(sub.command.id)["sent"] == 100, 15, "all rows sent", h.live())
        with caplog.at_level(logging.ERROR, logger="hub.delivery.ingest"), WriteLock(_db_path(h)):
            held_buffer, until = 0, time.monotonic() + 5.0
            while time.monotonic() < until:  # the acks arrive at 2 s and find the database locked
                held_buffer = max(held_buffer, ing.sink.buffer.qsize())  # put back between attempts
                time.sleep(0.05)
            assert h.counts(sub.command.id)["acked"] == 0
        rows = h.wait_terminal(sub.command.id, timeout=30)
    finally:
        ing.stop()
        irt.db.dispose()
    fig = h.figures("e: database locked", sub.command.id, rows, failed_flushes=failures["flush"],
                    buffered_during_lock=held_buffer, acks_heard=ing.stats["acks"],
                    acks_applied=ing.stats["acks_applied"])
    h.check_consistent(sub.command.id, rows)
    assert failures["flush"] >= 2  # the lock really made flushes fail, and they were retried
    assert held_buffer >= 100  # 100 acks (and status) waited in the buffer
    assert fig["acked"] == 100 and ing.stats["acks_applied"] == 100
