"""One destination's delivery lane: a queue and a thread that sends its envelopes one at a time,
in order, retrying the head of the queue with exponential backoff before it moves on.

`offer()` only puts on the queue, so the hub's call to handle() returns at once however slow the
destination is, and one destination being down holds up no other. An envelope the destination
refuses outright, or that is still undelivered after `max_attempts` tries or `max_age_s` since it
was queued, becomes a dead letter; so does one that finds the queue full. What is still queued
when the lane stops is saved and sent first when it starts again.
"""
from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hub_output_events.envelope import Envelope
from hub_output_events.storage import DeadLetterStore, PendingFile

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """One attempt failed. `transient`: worth trying again (connection refused, timeout, 5xx);
    otherwise the destination refused this event for good (a 4xx). `retry_after_s`: what the
    destination asked for (Retry-After)."""

    def __init__(self, message: str, transient: bool = True, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int | None = 10  # None: until max_age_s (or for ever)
    max_age_s: float | None = 3600.0  # since the envelope was queued; None: no limit
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0

    def delay(self, attempt: int, asked_s: float | None = None) -> float:
        """Wait before try `attempt + 1`: initial·2^(attempt-1) capped at backoff_max_s, then
        "equal jitter" (a random half of it added to the other half), so destinations that failed
        together do not all come back at the same instant. Retry-After is honoured up to the cap."""
        base = min(self.backoff_max_s, self.backoff_initial_s * (2 ** min(attempt - 1, 30)))
        wait = base / 2 + random.uniform(0, base / 2)
        if asked_s is not None:
            wait = max(wait, min(asked_s, self.backoff_max_s))
        return wait

    def exhausted(self, attempts: int, age_s: float) -> bool:
        return ((self.max_attempts is not None and attempts >= self.max_attempts)
                or (self.max_age_s is not None and age_s >= self.max_age_s))


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Lane:
    def __init__(self, name: str, send: Callable[[Envelope], None], policy: RetryPolicy,
                 dead_letters: DeadLetterStore, pending: PendingFile, max_queue: int = 10_000,
                 describe: str = "") -> None:
        self.name = name
        self.describe = describe or name  # where it goes, for health (a URL without secrets, a topic)
        self._send = send
        self.policy = policy
        self.dead_letters = dead_letters
        self.pending = pending
        self._queue: queue.Queue[tuple[Envelope, float]] = queue.Queue(max_queue)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._save_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self.delivered = 0
        self.failed_attempts = 0
        self.dead_lettered = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.last_success_at: str | None = None
        self.last_failure_at: str | None = None
        self.retrying_sequence: int | None = None  # the envelope being retried now

    # -- the hub's side -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        for envelope in self.pending.load():  # left over from the last stop: they go first
            self._put(envelope)
        self._thread = threading.Thread(target=self._run, name=f"hub-events-{self.name}", daemon=True)
        self._thread.start()

    def offer(self, envelope: Envelope) -> None:
        if self._stop.is_set():  # handed over while the output closes: kept for the next start
            with self._save_lock:
                self.pending.save([envelope])
            return
        self._put(envelope)

    def _put(self, envelope: Envelope) -> None:
        try:
            self._queue.put_nowait((envelope, time.monotonic()))
        except queue.Full:
            self._dead(envelope, 0, f"queue full ({self._queue.maxsize} events waiting for {self.describe})")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sending; what is queued (and the event being retried) is saved for the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s: still in a send after %.0fs; saving the queue without it", self.name, timeout)
                self._save([])

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        with self._stats_lock:
            state = ("stopped" if self._stop.is_set() else "not started" if self._thread is None
                     else "failed (see the log)" if not self._thread.is_alive()
                     else "retrying" if self.consecutive_failures else "delivering")
            return {"destination": self.name, "target": self.describe, "state": state,
                    "queued": self._queue.qsize(), "delivered": self.delivered,
                    "failed_attempts": self.failed_attempts, "dead_lettered": self.dead_lettered,
                    "consecutive_failures": self.consecutive_failures, "retrying_sequence": self.retrying_sequence,
                    "last_error": self.last_error, "last_success_at": self.last_success_at,
                    "last_failure_at": self.last_failure_at}

    # -- the lane's thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        current: tuple[Envelope, float] | None = None
        try:
            while not self._stop.is_set():
                try:
                    current = self._queue.get(timeout=0.2)
                except queue.Empty:
                    continue
                if self._deliver(*current):
                    current = None
        except Exception:  # a bug must not silently end deliveries: say so, keep what is queued
            log.exception("%s: delivery thread failed", self.name)
            with self._stats_lock:
                self.last_error = "delivery thread failed; see the log"
        finally:
            self._save([current[0]] if current is not None else [])

    def _deliver(self, envelope: Envelope, queued_at: float) -> bool:
        """Send one envelope until it is delivered or dead; False when the lane stopped first."""
        attempts = 0
        while True:
            attempts += 1
            try:
                self._send(envelope)
            except DeliveryFailed as exc:
                self._failed(envelope, str(exc))
                if not exc.transient:
                    self._dead(envelope, attempts, f"refused: {exc}")
                    return True
                if self.policy.exhausted(attempts, time.monotonic() - queued_at):
                    self._dead(envelope, attempts, f"gave up after {attempts} attempts: {exc}")
                    return True
                delay = self.policy.delay(attempts, exc.retry_after_s)
                log.info("%s: sequence %d attempt %d failed (%s); again in %.1fs", self.name, envelope.sequence,
                         attempts, exc, delay)
                if self._stop.wait(delay):
                    return False
                continue
            with self._stats_lock:
                self.delivered += 1
                self.consecutive_failures = 0
                self.retrying_sequence = None
                self.last_success_at = _now()
            return True

    def _failed(self, envelope: Envelope, error: str) -> None:
        with self._stats_lock:
            self.failed_attempts += 1
            self.consecutive_failures += 1
            self.retrying_sequence = envelope.sequence
            self.last_error = error
            self.last_failure_at = _now()

    def _dead(self, envelope: Envelope, attempts: int, reason: str) -> None:
        log.warning("%s: event %s (sequence %d) dead-lettered: %s", self.name, envelope.id, envelope.sequence, reason)
        self.dead_letters.add(self.name, envelope, attempts, reason)
        with self._stats_lock:
            self.dead_lettered += 1
            self.retrying_sequence = None

    def _save(self, first: list[Envelope]) -> None:
        with self._save_lock:
            rest = []
            while True:
                try:
                    rest.append(self._queue.get_nowait()[0])
                except queue.Empty:
                    break
            self.pending.save([*first, *rest])
