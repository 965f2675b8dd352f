"""PostgreSQL: the sweeper expiring 2,000 deliveries at once (and counting each device's failure)
while the ingest's writer floods status reports of the same 2,000 devices, in another order.

The finding: both updated device_status rows in the order their plan scanned them, and they
deadlocked (`DeadlockDetected … device_status`); PostgreSQL then aborted one of them. Now both
lock the rows in device id order first (hub.fleet.health.lock_status_rows) and the sweeper passes over
delivery rows the writer holds, so neither can wait on the other in a cycle."""
from __future__ import annotations

import logging
import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub.store.db import utcnow
from hub.delivery.ingest import Ingest
from hub.store.models import Delivery, DeviceStatus
from tests.support.ingest_fixtures import postgres_url, runtime_with_devices, sent_command  # noqa: F401

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600)]
N = 2000
SWEEPS = 12


def _statuses(ing: Ingest, ids: list[str], at, rng: random.Random) -> None:  # noqa: ANN001
    order = ids[:]
    rng.shuffle(order)  # the writer meets devices in arrival order, never the sweeper's
    for did in order:
        ing.sink.status("loopback", did.lower(), {"online": True, "volume": rng.randint(0, 100), "faults": [],
                                                  "reported_at": at})


def test_expiry_of_2000_rows_while_status_floods_in_does_not_deadlock(postgres_url: str, caplog) -> None:  # noqa: F811
    rt, ids = runtime_with_devices(postgres_url, N, failure_threshold=10_000)
    ing = Ingest(rt, vendors=[])
    ing._next_requeue = float("inf")  # no Redis in this test: the lost-job check stays out
    rng = random.Random(4)
    start = utcnow() - timedelta(hours=1)
    _statuses(ing, ids, start, rng)
    while ing.flush():
        pass
    errors: list[BaseException] = []
    sweeping = threading.Event()
    sweeping.set()

    def writer() -> None:
        k = 0
        while sweeping.is_set():
            k += 1
            _statuses(ing, ids, start + timedelta(seconds=k), rng)
            try:
                while ing.flush():
                    pass
            except Exception as exc:  # noqa: BLE001 - what we are looking for
                errors.append(exc)

    def sweeper() -> None:
        try:
            for _ in range(SWEEPS):
                sent_command(rt, ids, expires_at=utcnow() - timedelta(seconds=1))
                try:
                    ing.sweep()
                except Exception as exc:  # noqa: BLE001
                    errors.append(exc)
        finally:
            sweeping.clear()

    with caplog.at_level(logging.WARNING):
        threads = [threading.Thread(target=writer), threading.Thread(target=sweeper)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(500)
    try:
        while ing.flush():
            pass
        ing.sweep()  # anything a failed sweep left
        problems = [f"{type(e).__name__}: {e}" for e in errors]
        assert not [p for p in problems + [r.getMessage() for r in caplog.records] if "eadlock" in p], problems
        assert not problems, problems
        with rt.db.session() as s:
            expired = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.state == "expired"))
            failures = dict(s.execute(select(DeviceStatus.consecutive_failures, func.count())
                                      .group_by(DeviceStatus.consecutive_failures)).all())
        print(f"\nexpired={expired} consecutive_failures={failures} writer_stats={ing.stats}")
        assert expired == N * SWEEPS
        assert failures == {SWEEPS: N}  # each sweep counted each device once, none lost, none twice
    finally:
        rt.db.dispose()
