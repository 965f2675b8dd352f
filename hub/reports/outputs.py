"""Running the configured outputs (`hub outputs run`): metrics, event streams, open data…

One process reads the outputs file (setting `outputs_file`; hub.reports.output_config), listens to
the hub's events on Redis (hub.events.listen) and hands each output, on its own thread and queue
(hub.reports.output_worker), the events its manifest names, and calls its run_periodic every
interval. Every `outputs_tick_s` it re-reads the file — an output added, removed, switched on or
off, or configured anew is started or stopped; a broken edit keeps the last good set, said in the
log, the audit log and the status — and records each output's health in Redis, where
`hub outputs list` and GET /api/outputs read it from any process.

Events are a courtesy, as on the Redis channel itself: what is published while no runner listens,
or is queued for an output when it is stopped, is not kept. Figures an output reports come from
the database through its context (hub.output.OutputContext), never from counting events.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime
from typing import Any

from hub import events
from hub.access import audit
from hub.output import OutputContext, OutputError
from hub.reports.output_config import OutputBook, OutputConfig, entry_state_dir
from hub.reports.output_context import HubOutputContext
from hub.reports.output_worker import OutputWorker
from hub.runtime import Runtime
from hub.store.db import utcnow

log = logging.getLogger(__name__)
RUNNER_FIELD = "_runner"  # the status hash's field about the process itself; outputs' names never start with _
STATUS_TTL_S = 86400  # a runner gone for a day leaves no status behind


def status_key(rt: Runtime) -> str:
    return f"{rt.settings.queue}:outputs"


class OutputRunner:
    """The running outputs of one process. `run(stop)` in a process of its own, or `start()` and
    `stop()` to run it in threads (the embedded demo, tests)."""

    def __init__(self, rt: Runtime, path: str | None = None, context: OutputContext | None = None) -> None:
        self.rt = rt
        self.book = OutputBook(path if path is not None else rt.settings.outputs_file, rt.plugins)
        self.context = context if context is not None else HubOutputContext(rt)
        self.workers: dict[str, OutputWorker] = {}
        self.refused: dict[str, dict[str, Any]] = {}  # outputs that could not be made, with why
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at = utcnow()

    # -- configuration ------------------------------------------------------------------------------------
    def tick(self) -> None:
        """Pick up a changed file, start and stop outputs to match it."""
        self.book.refresh()
        self._report_config_error()
        self.reconcile()

    def record_status(self, stop: threading.Event) -> None:
        """Record everyone's health every tick, on a thread of its own: a Redis that is slow to answer
        (its socket timeout is 30 s) delays the status, never the reading of the outputs file."""
        while not stop.is_set():
            try:
                self.publish_status()
            except Exception as exc:  # Redis away: the outputs go on; their status waits for it
                log.warning("could not record the outputs' status: %s", exc)
            stop.wait(self.rt.settings.outputs_tick_s)

    def reconcile(self) -> None:
        wanted = {n: c for n, c in self.book.outputs.items() if c.enabled}
        with self._lock:
            for name, worker in list(self.workers.items()):
                cfg = wanted.get(name)
                same = cfg is not None and cfg.config_hash == worker.cfg.config_hash
                if same and worker.running:
                    continue
                del self.workers[name]
                worker.stop()
                if same and not worker.opened:  # refused to start for good: not again until configured anew
                    self.refused[name] = {"hash": worker.cfg.config_hash, "error": worker.health[1]}
                else:
                    log.info("output %s stopped%s", name, " (to start it anew)" if cfg is not None else "")
            for name in list(self.refused):
                if name not in wanted or wanted[name].config_hash != self.refused[name]["hash"]:
                    del self.refused[name]
            for name, cfg in wanted.items():
                if name not in self.workers and name not in self.refused:
                    self._start(cfg)

    def _start(self, cfg: OutputConfig) -> None:
        try:
            output = cfg.instance(self.rt.plugins, entry_state_dir(self.rt.settings.state_dir, cfg.name))
        except OutputError as exc:  # a plugin uninstalled since the file was checked, a variable unset…
            self.refused[cfg.name] = {"hash": cfg.config_hash, "error": str(exc)}
            log.error("%s", exc)
            return
        worker = OutputWorker(cfg, output, self.context, retry_s=self.rt.settings.outputs_retry_s,
                              queue_max=self.rt.settings.outputs_queue_max)
        worker.start()
        self.workers[cfg.name] = worker
        log.info("output %s (%s) started", cfg.name, cfg.plugin)

    def _report_config_error(self) -> None:
        self.book.report(log, self._audit_config_error)

    def _audit_config_error(self, error: str, running: list[str]) -> None:
        try:
            with self.rt.db.session() as s:
                audit.record(s, "process:outputs", "outputs.config_error", "config", str(self.book.path),
                             {"error": error, "running": running})
        except Exception:  # the audit log is a second copy of what the log and the status say
            log.warning("could not audit the outputs file error", exc_info=True)

    # -- events -----------------------------------------------------------------------------------------
    def dispatch(self, event: Any) -> int:
        """Queue `event` for every output that wants it; how many took it."""
        with self._lock:
            workers = list(self.workers.values())
        return sum(1 for w in workers if w.wants(event) and w.offer(event))

    def listen(self, stop: threading.Event) -> None:
        """Dispatch the hub's events from Redis until `stop` is set."""
        while not stop.is_set():
            try:
                for event in events.listen(self.rt.redis, events.channel_name(self.rt), stop=stop, poll_s=0.5):
                    self.dispatch(event)
            except Exception:  # listen() waits for Redis itself; anything else: listen again shortly
                log.exception("listening to the hub's events failed; listening again")
                stop.wait(1.0)

    # -- the process ------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Listen and tick until `stop` is set, then stop every output."""
        listener = threading.Thread(target=self.listen, args=(stop,), name="hub-outputs-listen", daemon=True)
        listener.start()
        status = threading.Thread(target=self.record_status, args=(stop,), name="hub-outputs-status", daemon=True)
        status.start()
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except Exception:
                    log.exception("outputs tick failed")
                stop.wait(self.rt.settings.outputs_tick_s)
        finally:
            status.join(5)  # before the last status (stopped) below, which it must not overwrite
            self.stop_outputs()
            listener.join(5)

    def start(self) -> None:
        """run() on a thread of its own."""
        self._stop.clear()
        t = threading.Thread(target=self.run, args=(self._stop,), name="hub-outputs", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def stop_outputs(self) -> None:
        with self._lock:
            workers, self.workers = list(self.workers.values()), {}
        for w in workers:
            w.stop()
        try:  # what each did until it stopped, for whoever looks next
            self.publish_status(running=False, rows={w.cfg.name: w.status() for w in workers})
        except Exception:
            log.warning("could not record the outputs' status at stop", exc_info=True)

    # -- status -----------------------------------------------------------------------------------------
    def statuses(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = {name: w.status() for name, w in self.workers.items()}
            for name, r in self.refused.items():
                cfg = self.book.outputs.get(name)
                rows[name] = {"name": name, "plugin": cfg.plugin if cfg else None, "running": False, "ok": False,
                              "detail": r["error"], "last_error": r["error"]}
        return rows

    def publish_status(self, running: bool = True, rows: dict[str, dict[str, Any]] | None = None) -> None:
        runner = {"at": utcnow().isoformat(), "pid": os.getpid(), "running": running,
                  "started_at": self.started_at.isoformat(), "file": str(self.book.path or ""),
                  "error": self.book.error, "tick_s": self.rt.settings.outputs_tick_s}
        fields = {RUNNER_FIELD: json.dumps(runner)}
        rows = self.statuses() if rows is None else rows
        fields.update({name: json.dumps(row, default=str) for name, row in rows.items()})
        key = status_key(self.rt)
        pipe = self.rt.redis.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping=fields)
        pipe.expire(key, STATUS_TTL_S)
        pipe.execute()


def read_status(rt: Runtime) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """What the runner last recorded: (about the runner or None, each output's status by name)."""
    raw = rt.redis.hgetall(status_key(rt))
    rows = {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}
    return rows.pop(RUNNER_FIELD, None), rows


def describe(rt: Runtime) -> dict[str, Any]:
    """The outputs file (checked now) beside what the runner last recorded: for the CLI and the API.

    `runner.alive` is false when no runner recorded its status for three ticks; an output's
    `status` is None when no runner runs it (disabled, or no runner)."""
    book = OutputBook(rt.settings.outputs_file, rt.plugins)
    book.refresh()
    try:
        runner, statuses = read_status(rt)
    except Exception as exc:  # Redis away: the configuration is still worth showing
        runner, statuses = {"error": f"cannot read the outputs' status: {type(exc).__name__}: {exc}"}, {}
    if runner is not None and "at" in runner:
        age = (utcnow() - datetime.fromisoformat(runner["at"])).total_seconds()
        runner["alive"] = bool(runner.get("running")) and age <= 3 * float(runner.get("tick_s") or 5) + 5
        runner["seen_s_ago"] = round(age, 1)
    if runner is not None and not runner.get("alive"):
        statuses = {n: {**s, "running": False, "ok": False, "detail": "the outputs runner is not running"}
                    for n, s in statuses.items()}
    rows = []
    for name, cfg in book.outputs.items():
        rows.append({"name": name, "plugin": cfg.plugin, "enabled": cfg.enabled, "configured": True,
                     "config": cfg.shown(), "status": statuses.pop(name, None)})
    for name, st in sorted(statuses.items()):  # run from the last good file while the file is broken
        rows.append({"name": name, "plugin": st.get("plugin"), "enabled": True, "configured": False,
                     "config": None, "status": st})
    return {"file": rt.settings.outputs_file or None, "error": book.error, "runner": runner, "outputs": rows}
