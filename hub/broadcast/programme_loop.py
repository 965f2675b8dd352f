"""The scheduler process's second loop: programmes' coming occurrences made into scheduled
commands every `programme_materialise_interval_s`, `programme_look_ahead_s` ahead.

It runs beside hub.delivery.release.Scheduler (`hub scheduler`, the embedded demo) and needs no
lock: two scheduler processes running it at once make each slot once, because every command of a
slot carries the same idempotency key and the database takes one (hub.broadcast.materialise). Its
first pass, at start, is the catch-up after an outage.
"""
from __future__ import annotations

import logging
import threading

from hub.broadcast.materialise import Materialised, Materialiser
from hub.runtime import Runtime

log = logging.getLogger(__name__)


class ProgrammeLoop:
    """`start()` runs `pass_once()` now and then every interval in a thread, until `stop()`."""

    def __init__(self, rt: Runtime, name: str = "programmes") -> None:
        self.rt, self.name = rt, name
        self.materialiser = Materialiser(rt)
        self.passes = 0
        self.last: Materialised | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def pass_once(self) -> Materialised:
        done = self.materialiser.run()
        self.passes += 1
        self.last = done
        if done.created or done.late or done.missed or done.refused:
            log.info("programmes: %d commands made, %d late, %d recorded missed, %d refused", len(done.created),
                     len(done.late), len(done.missed), len(done.refused))
        return done

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.pass_once()
            except Exception:  # database hiccup: say so, try again at the next interval
                log.exception("programme pass failed; retrying in %g s", self.rt.settings.programme_materialise_interval_s)
            self._stop.wait(self.rt.settings.programme_materialise_interval_s)

    def start(self) -> ProgrammeLoop:
        self._thread = threading.Thread(target=self.run, name=f"hub-{self.name}", daemon=True)
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
