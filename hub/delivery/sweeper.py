"""The ingest's sweeper: the second thread of `hub ingest`, beside the writer. Every
`sweep_interval_s` it ends overdue deliveries `expired`, takes silent or failing devices offline,
enqueues again the jobs that were lost, resends to devices that came back, and now and then
looks for newly registered devices and vendors whose link was down at start-up.

A mixin of hub.delivery.ingest.Ingest rather than an object of its own: it shares the ingest's
runtime, health policy, statistics, stop flag and its list of devices that came back (the writer
notes them, the sweeper resends), and tests drive it as `ingest.sweep()`.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from hub.delivery import quarantine, redeliver
from hub.delivery.states import expire_due
from hub.fleet import health
from hub.store.db import utcnow
from hub.store.models import DeliveryState

if TYPE_CHECKING:
    from hub.runtime import Runtime

log = logging.getLogger("hub.delivery.ingest")  # its messages have always come from the ingest


class Sweeping:
    """What `Ingest` runs in its "hub-sweeper" thread. It uses these attributes of the Ingest…"""

    rt: Runtime
    policy: health.HealthPolicy
    comebacks: redeliver.Comebacks
    stats: dict[str, int]
    watch_interval_s: float
    _stop: threading.Event
    _next_requeue: float

    if TYPE_CHECKING:  # and these of its methods
        def _retry_down(self) -> None: ...  # start vendors whose link was down
        def refresh_watch(self) -> None: ...  # tell adapters which devices to watch
        def _announce(self, changes: list[health.StateChange]) -> None: ...  # publish transitions

    def _sweeper(self) -> None:
        last_watch = time.monotonic()
        while not self._stop.wait(self.rt.settings.sweep_interval_s):
            try:
                self.sweep()
                self._retry_down()
                if time.monotonic() - last_watch >= self.watch_interval_s:
                    last_watch = time.monotonic()
                    self.refresh_watch()
                    with self.rt.db.session() as s:
                        quarantine.prune(s, self.rt.settings.quarantine_max_rows)
            except Exception:
                log.exception("sweep failed; retrying")

    def sweep(self) -> None:
        """Expire overdue deliveries and take silent or failing devices offline."""
        now = utcnow()
        # Two transactions: each locks device_status rows in device id order (health), and one
        # transaction taking two ordered sets one after the other would not be ordered as a whole
        # — the PostgreSQL deadlock with the writer seen when 2,000 rows expired at once.
        with self.rt.db.session() as s:
            expired = expire_due(s, now)
            health.count_failures(s, expired)
        with self.rt.db.session() as s:
            changes = health.sweep(s, self.policy, now)
        self.stats[DeliveryState.EXPIRED] += len(expired)
        self._announce(changes)
        self._requeue_lost(time.monotonic())
        self._redeliver()

    def _requeue_lost(self, at: float) -> None:
        """Enqueue again the queued deliveries whose job was lost or died (hub.delivery.recovery): the
        emergency class at every sweep, the others now and then."""
        settings = self.rt.settings
        emergency_only = at < self._next_requeue
        if not emergency_only:
            self._next_requeue = at + max(settings.sweep_interval_s, min(10.0, settings.requeue_after_s / 3))
        from hub.delivery.recovery import requeue_orphans

        try:
            self.stats["requeued_jobs"] += requeue_orphans(self.rt, emergency_only=emergency_only)
        except Exception as exc:  # Redis down: expiry still runs; the next round tries again
            log.warning("could not check for lost jobs: %s: %s", type(exc).__name__, exc)

    def _redeliver(self) -> None:
        if not self.comebacks.pending():
            return
        try:
            self.comebacks.run()
        except Exception as exc:  # Redis or database away: the next sweep looks again, within the window
            log.warning("could not resend to devices that came back: %s: %s", type(exc).__name__, exc)
