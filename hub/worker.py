"""rq workers for the hub.

Jobs run in the worker process itself (SimpleWorker, no fork per job) so that a vendor
adapter's connection — an MQTT session, a Modbus socket — is opened once and reused by every
batch, instead of once per job.
"""
from __future__ import annotations

from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty

from hub.runtime import Runtime


class HubWorker(SimpleWorker):
    """The production worker: one process, signals for warm shutdown."""


class ThreadWorker(SimpleWorker):
    """A worker that can run in a non-main thread (embedded demo): no signal handlers, and a
    timer rather than SIGALRM to enforce job timeouts."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass


def make_worker(rt: Runtime, threaded: bool = False, name: str | None = None) -> SimpleWorker:
    cls = ThreadWorker if threaded else HubWorker
    return cls(rt.queues(), connection=rt.redis, name=name)
