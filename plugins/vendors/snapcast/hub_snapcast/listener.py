"""The thread behind `listen()`: keeps the control connection up, re-reads the whole status
at start, after every reconnect and every poll interval, and backs off while snapserver is gone.
Notifications themselves arrive on the connection's reader thread, not here."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.2


class Listener:
    def __init__(self, refresh: Callable[[], None], poll_interval_s: float, backoff_max_s: float,
                 name: str = "snapcast-listener") -> None:
        self._refresh = refresh
        self.poll_interval_s = poll_interval_s
        self.backoff_max_s = max(BACKOFF_MIN_S, backoff_max_s)
        self.ready = threading.Event()  # set after the first full status went to the sink
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Refresh now: the connection broke, or a notification named something we do not know."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._halt.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = BACKOFF_MIN_S
        failing = False
        while not self._halt.is_set():
            try:
                self._refresh()
            except Exception as exc:  # noqa: BLE001 - whatever it was, keep listening
                if self._halt.is_set():
                    return
                if not failing:
                    log.warning("snapcast listener: %s; retrying with backoff", exc)
                failing = True
                pause = backoff
                backoff = min(self.backoff_max_s, backoff * 2)
            else:
                if failing:
                    log.info("snapcast listener: snapserver answers again")
                failing = False
                backoff = BACKOFF_MIN_S
                pause = self.poll_interval_s
                self.ready.set()
            self._wake.wait(pause)
            self._wake.clear()
