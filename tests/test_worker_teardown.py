"""A worker stops promptly (delivery finding 6). rq listens for its control commands on a Redis
pubsub thread; at teardown it unsubscribes and waits for that thread, which — when it is
between messages — sat out a whole 60 s poll: a burst worker of the test harness then returned a
minute late ("acked after 60.05 s" in certification runs, and a bulletin already over by the
time the check looked), and a production worker took a minute to shut down."""
from __future__ import annotations

import time
import uuid

import pytest
from rq import Queue

from hub.runtime import Runtime
from hub.delivery.worker import HubWorker, ThreadWorker
from tests.support.processes import wait_until


@pytest.mark.parametrize("cls", [ThreadWorker, HubWorker])
def test_worker_unsubscribes_without_waiting_out_a_pubsub_poll(rt: Runtime, cls: type) -> None:
    w = cls([Queue(f"teardown-{uuid.uuid4().hex[:8]}", connection=rt.redis)], connection=rt.redis)
    w.subscribe()
    try:
        wait_until(lambda: w.pubsub.subscribed, 10, "the pubsub subscription")
        # The moment that cost a minute: the thread has heard its channel go and now waits for
        # a subscription that will not come, when the worker tears down.
        w.pubsub.unsubscribe()
        wait_until(lambda: not w.pubsub.subscribed, 10, "the unsubscription to be heard")
        time.sleep(0.2)
    finally:
        started = time.monotonic()
        w.unsubscribe()
        took = time.monotonic() - started
    assert took < 5, f"{cls.__name__} took {took:.1f} s to stop listening"
    assert not w.pubsub_thread.is_alive()


def test_burst_worker_returns_promptly_every_time(rt: Runtime) -> None:
    """The harness runs a burst worker per command: each returns in well under a second."""
    q = Queue(f"teardown-{uuid.uuid4().hex[:8]}", connection=rt.redis)
    slowest = 0.0
    for _ in range(40):
        started = time.monotonic()
        ThreadWorker([q], connection=rt.redis).work(burst=True, logging_level="WARNING")
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 5, f"a burst worker took {slowest:.1f} s to return"
