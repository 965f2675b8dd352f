"""Polling configured sources as rq jobs, on a queue of their own (`<queue>.sources`).

A tick (`hub sources run`, or a test) re-reads the sources file if it changed and enqueues one
job per due source. A job calls the plugin's fetch(since) with a timeout, takes the items in
(hub.content.intake) and records the source's health in `source_status`; a failure waits twice
as long as the last one, up to source_backoff_max_s. A source being polled holds a Redis lock,
so a slow source is never enqueued twice, and its failure costs only itself: each job has its
own try, and the tick goes on past a source it could not enqueue.

A job carries the source's entry as written, ${ENV} references unexpanded: secrets never sit in
Redis, and the job runs the configuration the tick saw even if the file changed since.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hub.access import audit
from hub.content.intake import IntakeResult, take_in
from hub.content.source_config import SourceBook, SourceConfig, SourceConfigError, parse_entry
from hub.runtime import JOB_SERIALIZER, Runtime, get_runtime
from hub.source import SourceError, checked_items
from hub.store.content_tables import SourceStatus
from hub.store.db import utcnow

log = logging.getLogger(__name__)
MAX_NOTES = 20  # kept in the source's health; the plugin logs the rest

QUEUE = "sources"  # rt.queue(QUEUE) is "<settings.queue>.sources"
POLL_JOB = "hub.content.polling.poll_job"
LOCK_MARGIN_S = 60  # a dead worker's lock outlives the fetch timeout by this much


def queue_name(rt: Runtime) -> str:
    return rt.queue_name(QUEUE)


def _lock_key(rt: Runtime, name: str) -> str:
    return f"{rt.settings.queue}:source-poll:{name}"


def timeout_of(rt: Runtime, cfg: SourceConfig) -> float:
    return cfg.timeout_s or rt.settings.source_fetch_timeout_s


def backoff(rt: Runtime, cfg: SourceConfig, failures: int) -> float:
    """Seconds to the next poll after `failures` failures in a row (0: a success)."""
    if failures <= 0:
        return cfg.interval_s
    return max(cfg.interval_s, min(cfg.interval_s * 2 ** min(failures, 30), rt.settings.source_backoff_max_s))


def status_of(rt: Runtime, name: str) -> SourceStatus | None:
    with rt.db.session() as s:
        return s.get(SourceStatus, name)


def _due(status: SourceStatus | None, cfg: SourceConfig, now: datetime) -> bool:
    if status is None or status.next_poll_at is None or status.config_hash != cfg.config_hash:
        return True  # never polled, or configured anew: at once
    return status.next_poll_at <= now


def enqueue(rt: Runtime, cfg: SourceConfig) -> bool:
    """Enqueue a poll of `cfg` unless one is queued or running; whether it was enqueued."""
    timeout = timeout_of(rt, cfg)
    if not rt.redis.set(_lock_key(rt, cfg.name), "1", nx=True, ex=int(timeout) + LOCK_MARGIN_S):
        return False
    try:
        rt.queue(QUEUE).enqueue(POLL_JOB, args=(cfg.raw,), job_timeout=int(timeout) + LOCK_MARGIN_S,
                                result_ttl=600, failure_ttl=86400, description=f"poll source {cfg.name}")
    except Exception:
        rt.redis.delete(_lock_key(rt, cfg.name))
        raise
    return True


class Poller:
    """The tick: the running configuration (a SourceBook) and what is due in it."""

    def __init__(self, rt: Runtime, path: str | None = None) -> None:
        self.rt = rt
        self.book = SourceBook(path if path is not None else rt.settings.sources_file, rt.plugins)

    def tick(self, now: datetime | None = None) -> list[str]:
        """Pick up a changed file, then enqueue each enabled, due source; the names enqueued."""
        self.book.refresh()
        self._report_config_error()
        now = now or utcnow()
        enqueued = []
        for cfg in self.book.sources.values():
            if not cfg.enabled:
                continue
            try:
                if _due(status_of(self.rt, cfg.name), cfg, now) and enqueue(self.rt, cfg):
                    enqueued.append(cfg.name)
            except Exception:  # Redis or the database hiccuped for this one: the next tick tries again
                log.exception("source %s: could not enqueue its poll", cfg.name)
        return enqueued

    def _report_config_error(self) -> None:
        self.book.report(log, self._audit_config_error)

    def _audit_config_error(self, error: str, running: list[str]) -> None:
        with self.rt.db.session() as s:
            audit.record(s, "process:sources", "sources.config_error", "config", str(self.book.path),
                         {"error": error, "running": running})

    def run(self, stop: threading.Event) -> None:
        """Tick every source_tick_s until `stop` is set; a failed tick is logged, not fatal."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("sources tick failed")
            stop.wait(self.rt.settings.source_tick_s)


@dataclass
class PollOutcome:
    ok: bool
    items: int = 0
    error: str | None = None
    intake: IntakeResult | None = None
    notes: list[str] = field(default_factory=list)  # what the fetch passed over, from the plugin


def _fetch(rt: Runtime, cfg: SourceConfig, since: datetime | None) -> tuple[list[Any], list[str]]:
    """fetch(since) on a thread of its own, so a source that hangs past its timeout is given up on
    (its thread left to end by itself) rather than holding the worker."""
    cfg.refuse_hub_services(rt.address_policy())
    source = cfg.instance(rt.plugins)
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["items"] = checked_items(cfg.name, source.fetch(since))
        except BaseException as exc:  # handed to the job's thread, which records it
            box["error"] = exc

    t = threading.Thread(target=call, name=f"source-{cfg.name}", daemon=True)
    t.start()
    t.join(timeout_of(rt, cfg))
    if t.is_alive():
        raise SourceError(f"fetch timed out after {timeout_of(rt, cfg):g} s", transient=True)
    if "error" in box:
        raise box["error"]
    try:  # a plugin's notes are information: one that fails to give them costs nothing else
        notes = [str(n)[:300] for n in list(source.notes())[:MAX_NOTES]]
    except Exception as exc:
        notes = [f"notes() raised {type(exc).__name__}: {exc}"[:300]]
    return box["items"], notes


def poll(rt: Runtime, cfg: SourceConfig) -> PollOutcome:
    """Poll one source now: fetch, take in, record its health. Never raises for the source's faults."""
    started = utcnow()
    with rt.db.session() as s:
        st = s.get(SourceStatus, cfg.name)
        since = st.last_success_at if st is not None and st.config_hash == cfg.config_hash else None
    try:
        items, notes = _fetch(rt, cfg, since)
        result = take_in(rt, cfg, items)
        outcome = PollOutcome(True, len(items), "; ".join(result.errors) or None, result, notes)
    except Exception as exc:  # the source's fault (or a plugin bug): its health says which, others go on
        text = str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}"
        outcome = PollOutcome(False, 0, text[:1000])
        log.warning("source %s: poll failed: %s", cfg.name, text)
    _record(rt, cfg, started, outcome)
    return outcome


def _record(rt: Runtime, cfg: SourceConfig, started: datetime, outcome: PollOutcome) -> None:
    now = utcnow()
    with rt.db.session() as s:
        st = s.get(SourceStatus, cfg.name)
        if st is None:
            st = SourceStatus(name=cfg.name, plugin=cfg.plugin, failures=0, items_fetched=0, items_last=0)
            s.add(st)
        st.plugin, st.last_attempt_at, st.config_hash = cfg.plugin, started, cfg.config_hash
        if outcome.ok:
            st.notes = outcome.notes or None
            st.last_success_at, st.failures = started, 0  # the next fetch asks from when this one began
            st.items_last, st.items_fetched = outcome.items, (st.items_fetched or 0) + outcome.items
        else:
            st.failures = (st.failures or 0) + 1
        if outcome.error:  # an item that could not be taken in is an error too, on a successful fetch
            st.last_error, st.last_error_at = outcome.error, now
        st.next_poll_at = now + timedelta(seconds=backoff(rt, cfg, st.failures))


def poll_job(raw: dict[str, Any]) -> dict[str, Any]:
    """The rq job: poll the source whose entry (as written) is `raw`, then free its lock."""
    rt = get_runtime()
    name = raw.get("name", "?")
    try:
        try:
            cfg = parse_entry(raw, f"{rt.settings.sources_file or 'sources'}: source", rt.plugins)
        except SourceConfigError as exc:  # e.g. a variable this worker's environment lacks: on its health
            cfg = SourceConfig(name=str(name), plugin=str(raw.get("plugin")), raw=raw)
            _record(rt, cfg, utcnow(), PollOutcome(False, error=str(exc)))
            return {"source": name, "ok": False, "error": str(exc)}
        outcome = poll(rt, cfg)
        return {"source": cfg.name, "ok": outcome.ok, "items": outcome.items, "error": outcome.error,
                **({"intake": outcome.intake.summary()} if outcome.intake else {})}
    finally:
        rt.redis.delete(_lock_key(rt, str(name)))


def make_source_worker(rt: Runtime, threaded: bool = False, name: str | None = None) -> Any:
    """A worker for the sources queue alone: a slow feed never delays a delivery job."""
    from hub.delivery.worker import HubWorker, ThreadWorker

    cls = ThreadWorker if threaded else HubWorker
    worker = cls([rt.queue(QUEUE)], connection=rt.redis, name=name, serializer=JOB_SERIALIZER)
    worker.job_heartbeat_s = rt.settings.worker_heartbeat_s
    return worker
