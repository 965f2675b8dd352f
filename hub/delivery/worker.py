"""rq workers for the hub.

Jobs run in the worker process itself (SimpleWorker, no fork per job) so that a vendor
adapter's connection — an MQTT session, a Modbus socket — is opened once and reused by every
batch, instead of once per job.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from rq import SimpleWorker
from rq.exceptions import DeserializationError
from rq.timeouts import TimerDeathPenalty

from hub.runtime import JOB_SERIALIZER, Runtime

log = logging.getLogger(__name__)


def _say_if_not_json(job: Any) -> None:
    """rq fails a job it cannot read, with a bare DeserializationError: say what it means."""
    try:
        job.func_name
    except DeserializationError:
        log.error("job %s is not JSON, so it is not run (a job pickled by a hub older than JSON jobs, or "
                  "written to Redis by someone else): it goes to the failed registry, and the rows it would have "
                  "sent, still queued, are enqueued again by the ingest's sweeper after requeue_after_s",
                  job.id)


class _PromptPubSub(SimpleWorker):
    """rq listens for its control commands on a Redis pubsub thread that waits up to 60 s per
    poll, and stops it at teardown with redis-py's `stop()`, which since redis-py 8 waits for the
    thread to finish that poll. When the thread is between messages as the worker unsubscribes,
    it sits out the whole 60 s: a burst worker (the test harness, certification runs) then
    returns a minute late, and a warm shutdown takes a minute. Poll every `pubsub_poll_s`."""

    pubsub_poll_s = 1.0

    def subscribe(self) -> None:
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(sleep_time=self.pubsub_poll_s, daemon=True,
                                                       exception_handler=self._pubsub_exception_handler)


class HubWorker(_PromptPubSub):
    """The production worker: one process, signals for warm shutdown.

    A SimpleWorker runs the job on its only thread, so rq's heartbeats stop for as long as the
    job runs and its entry in the started registry must outlive the longest job (minutes): a
    worker killed mid-batch would hold its job "started" that long. Here a thread heartbeats
    every `job_heartbeat_s` while a job runs, so the entry expires soon after the worker dies;
    rq's cleanup then moves the job to the failed registry and the ingest's sweeper enqueues the
    rows still queued again (hub.delivery.recovery). An emergency must reach its devices within 25 s of a
    worker's death, so the entry lives 10 s: four missed beats, well above a loaded machine's
    scheduling hiccups."""

    job_heartbeat_s = 2.0  # the setting worker_heartbeat_s, given by make_worker

    def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
        if job.timeout == -1:
            return super().get_heartbeat_ttl(job, working_time)
        return int(self.job_heartbeat_s * 4) + 2

    def perform_job(self, job: Any, queue: Any, execution: Any) -> bool:
        _say_if_not_json(job)
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.job_heartbeat_s):
                try:
                    self.maintain_heartbeats(job, execution)
                except Exception as exc:  # Redis hiccup: the next beat tries again
                    log.warning("job heartbeat failed: %s", exc)

        t = threading.Thread(target=beat, name="hub-job-heartbeat", daemon=True)
        t.start()
        try:
            return super().perform_job(job, queue, execution)
        finally:
            done.set()
            t.join(timeout=5)


class ThreadWorker(_PromptPubSub):
    """A worker that can run in a non-main thread (embedded demo, HubHarness' burst runs): no
    signal handlers, and a timer rather than SIGALRM to enforce job timeouts."""

    death_penalty_class = TimerDeathPenalty
    pubsub_poll_s = 0.05  # a burst worker's teardown waits for at most one poll

    def _install_signal_handlers(self) -> None:
        pass

    def perform_job(self, job: Any, queue: Any, execution: Any) -> bool:
        _say_if_not_json(job)
        return super().perform_job(job, queue, execution)


def make_worker(rt: Runtime, threaded: bool = False, name: str | None = None) -> SimpleWorker:
    cls = ThreadWorker if threaded else HubWorker
    worker = cls(rt.queues(), connection=rt.redis, name=name, serializer=JOB_SERIALIZER)
    worker.job_heartbeat_s = rt.settings.worker_heartbeat_s  # used by HubWorker
    return worker
