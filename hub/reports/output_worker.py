"""One configured output at work: its own thread and its own queue of events, so a slow, hanging or
failing output holds up nobody but itself (hub.reports.outputs runs one per output).

The thread opens the output (hub.output.Output.open with the hub's read-only context), then hands it
each queued event (handle) and calls run_periodic every manifest.interval_s. A transient
OutputError is retried after each wait of the setting outputs_retry_s, then given up; any other
error is given up at once (a retry would fail the same way). What it did is in `status()`.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import datetime
from typing import Any

from hub.output import Output, OutputContext, OutputError
from hub.reports.output_config import OutputConfig
from hub.store.db import utcnow

log = logging.getLogger(__name__)
HEALTH_EVERY_S = 2.0  # how often an idle output's health() is asked, on its own thread
MAX_ERROR = 500
_WAKE = object()  # put in the queue by stop()


def _stamp(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


class OutputWorker:
    """`start()`, then `offer(event)` for each event it `wants`, then `stop()`."""

    def __init__(self, cfg: OutputConfig, output: Output, context: OutputContext, *,
                 retry_s: tuple[float, ...] = (1.0, 2.0, 4.0), queue_max: int = 10000) -> None:
        self.cfg = cfg
        self.output = output
        self.manifest = type(output).manifest
        self.context = context
        self.retry_s = tuple(retry_s)
        self.events: queue.Queue[Any] = queue.Queue(maxsize=queue_max)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.opened = False
        self.failing = False  # the last event or periodic run was given up
        self.counts = {"handled": 0, "given_up": 0, "retried": 0, "dropped": 0, "periodic_runs": 0}
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.last_event_at: datetime | None = None
        self.last_periodic_at: datetime | None = None
        self.started_at: datetime | None = None
        self.health: tuple[bool, str] = (False, "starting")

    # -- the runner's side ------------------------------------------------------------------------------
    def wants(self, event: Any) -> bool:
        return bool(self.manifest.events) and self.manifest.wants(event)

    def offer(self, event: Any) -> bool:
        """Queue `event` for the output; False (and counted as dropped) when its queue is full."""
        try:
            self.events.put_nowait(event)
            return True
        except queue.Full:
            with self._lock:
                self.counts["dropped"] += 1
            return False

    def start(self) -> None:
        self.started_at = utcnow()
        self._thread = threading.Thread(target=self._run, name=f"hub-output-{self.cfg.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the call in progress (an output stuck in one is left to end by itself)."""
        self._stop.set()
        try:
            self.events.put_nowait(_WAKE)  # a thread waiting for an event notices at once
        except queue.Full:
            pass  # a full queue does not keep it waiting
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("output %s did not stop within %g s; left to end by itself", self.cfg.name, timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        """What `hub outputs list` and GET /api/outputs show of this output."""
        ok, detail = self.health
        with self._lock:
            counts = dict(self.counts)
        healthy = self.running and self.opened and ok and not self.failing
        if not self.running:
            detail = detail or "stopped"
        elif self.failing and ok:
            detail = f"failing: {self.last_error}"
        return {"name": self.cfg.name, "plugin": self.cfg.plugin, "running": self.running, "ok": healthy,
                "detail": detail, "events": sorted(self.manifest.events), "interval_s": self.manifest.interval_s,
                "waiting": self.events.qsize(), **counts, "last_error": self.last_error,
                "last_error_at": _stamp(self.last_error_at), "last_event_at": _stamp(self.last_event_at),
                "last_periodic_at": _stamp(self.last_periodic_at), "started_at": _stamp(self.started_at)}

    # -- the output's thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if not self._open():
                return
            interval = self.manifest.interval_s
            # the first periodic run comes right after opening: an output that publishes every
            # few minutes catches up on what fell due while it was stopped, and replays asked
            # for meanwhile (an event stream's dead letters) go at once
            next_periodic = time.monotonic() if interval else None
            next_health = 0.0
            while not self._stop.is_set():
                now = time.monotonic()
                if next_health <= now:
                    self._check_health()
                    next_health = now + HEALTH_EVERY_S
                wait = next_health - now
                if next_periodic is not None:
                    wait = min(wait, next_periodic - now)
                try:
                    event = self.events.get(timeout=max(0.0, wait))
                except queue.Empty:
                    event = None
                if event is not None and event is not _WAKE and not self._stop.is_set():
                    if self._call("handle", self.output.handle, event):
                        self.last_event_at = utcnow()
                if next_periodic is not None and time.monotonic() >= next_periodic and not self._stop.is_set():
                    if self._call("run_periodic", self.output.run_periodic, self._now()):
                        self.last_periodic_at = utcnow()
                        with self._lock:
                            self.counts["periodic_runs"] += 1
                    next_periodic = time.monotonic() + interval  # type: ignore[operator]
        except Exception:  # a bug of ours: logged; the runner sees the thread gone and starts it anew
            log.exception("output %s: its worker failed", self.cfg.name)
            self.health = (False, "its worker failed (see the log)")
        finally:
            if self.opened:
                try:
                    self.output.close()
                except Exception:  # closing a broken output may fail too
                    log.warning("output %s: close() failed", self.cfg.name, exc_info=True)
            if self.health[0]:
                self.health = (False, "stopped")

    def _now(self) -> datetime:
        """The hub's time as the context tells it (OutputContext.now), which periodic runs are for."""
        try:
            return self.context.now()
        except Exception:  # a context without a clock of its own
            return utcnow()

    def _open(self) -> bool:
        """open() the output, trying again after a transient refusal until it opens or is stopped."""
        attempt = 0
        while not self._stop.is_set():
            try:
                self.output.open(self.context)
                self.opened = True
                return True
            except OutputError as exc:
                self._error(f"could not start: {exc}")
                self.health = (False, f"could not start: {exc}"[:MAX_ERROR])
                if not exc.transient:
                    return False
            except Exception as exc:
                self._error(f"could not start: {type(exc).__name__}: {exc}")
                self.health = (False, f"could not start: {type(exc).__name__}: {exc}"[:MAX_ERROR])
                return False
            wait = self.retry_s[min(attempt, len(self.retry_s) - 1)] if self.retry_s else 1.0
            attempt += 1
            self._stop.wait(wait)
        return False

    def _check_health(self) -> None:
        try:
            h = self.output.health()
            self.health = (bool(h.ok), str(h.detail or "")[:MAX_ERROR])
        except Exception as exc:
            self.health = (False, f"health() raised {type(exc).__name__}: {exc}"[:MAX_ERROR])

    def _call(self, what: str, fn: Any, arg: Any) -> bool:
        """fn(arg), retried after each wait of retry_s while it fails transiently; whether it succeeded."""
        attempt = 0
        while True:
            try:
                fn(arg)
            except OutputError as exc:
                if exc.transient and attempt < len(self.retry_s) and not self._stop.is_set():
                    self._error(f"{what}: {exc} (retrying)")
                    with self._lock:
                        self.counts["retried"] += 1
                    if self._stop.wait(self.retry_s[attempt]):
                        return False
                    attempt += 1
                    continue
                self._give_up(what, str(exc))
                return False
            except Exception as exc:  # a plugin's bug: this event is lost for it, not for the others
                log.warning("output %s: %s raised", self.cfg.name, what, exc_info=True)
                self._give_up(what, f"{type(exc).__name__}: {exc}")
                return False
            self.failing = False
            if what == "handle":
                with self._lock:
                    self.counts["handled"] += 1
            return True

    def _give_up(self, what: str, text: str) -> None:
        self._error(f"{what}: {text} (given up)")
        self.failing = True
        with self._lock:
            self.counts["given_up"] += 1
        log.warning("output %s: %s given up: %s", self.cfg.name, what, text)

    def _error(self, text: str) -> None:
        self.last_error, self.last_error_at = text[:MAX_ERROR], utcnow()
