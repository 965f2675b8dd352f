"""The gateway has no push channel: a daemon thread polls its status endpoint and hands what
changed to the hub's ResultSink."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from hub.vendor import ResultSink, StatusParseError

from hub_http_gateway.client import GatewayClient, GatewayError

log = logging.getLogger(__name__)

ParseFn = Callable[[str, Any], dict[str, Any]]


class StatusPoller:
    """Polls every `interval_s`; survives anything the gateway or the sink throws at it."""

    def __init__(self, client: GatewayClient, sink: ResultSink, vendor: str, interval_s: float,
                 parse: ParseFn, resync_s: float = 60.0) -> None:
        self.client, self.sink, self.vendor, self.interval_s, self.parse = client, sink, vendor, interval_s, parse
        self.resync_s = resync_s
        self._synced_at = time.monotonic()
        self._stop = threading.Event()
        self._first = threading.Event()
        self._first_ok = False
        self._thread: threading.Thread | None = None
        self._online: dict[str, bool] = {}
        self._last: dict[str, Any] = {}  # raw object last forwarded, so unchanged devices are not re-sent
        self._problems: dict[str, str] = {}  # last problem logged per device (or "" for the endpoint)
        self.polls = 0
        self.failures = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"{self.vendor}-status-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Ask the thread to end and wait up to `timeout`; True when it has ended."""
        self._stop.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_first(self, timeout: float) -> bool:
        """Whether the first poll has completed successfully within `timeout`."""
        return self._first.wait(timeout) and self._first_ok

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ok = self.poll_once()
            except Exception:  # noqa: BLE001 - a bug here must not end status for good
                log.exception("%s: status poll failed unexpectedly", self.vendor)
                ok = False
            if not self._first.is_set():
                self._first_ok = ok
                self._first.set()
            self._stop.wait(self.interval_s)

    def _note(self, key: str, problem: str | None) -> None:
        # Warn when a problem starts or changes, not on every poll of a gateway that stays down.
        before = self._problems.get(key)
        if problem is None:
            if before:
                log.info("%s: %s recovered", self.vendor, key or "status endpoint")
            self._problems.pop(key, None)
        elif problem != before:
            log.warning("%s: %s", self.vendor, problem)
            self._problems[key] = problem

    def poll_once(self) -> bool:
        """One poll; whether the gateway's answer could be read at all."""
        self.polls += 1
        try:
            body = self.client.get_status()
            devices = body.get("devices")
            if not isinstance(devices, list):
                raise GatewayError("status answer has no devices list", transient=True)
        except GatewayError as exc:
            self.failures += 1
            self._note("", f"status poll failed: {exc.reason}")
            return False
        self._note("", None)
        if time.monotonic() - self._synced_at >= self.resync_s:
            # Only changes are reported, so a device registered after a report went by (the hub
            # dropped it as unknown) would wait for its next change; now and then, report all.
            self._online.clear()
            self._last.clear()
            self._synced_at = time.monotonic()
        seen: set[str] = set()
        for raw in devices:
            address = raw.get("device") if isinstance(raw, dict) else None
            if not isinstance(address, str) or not address:
                self._note("?", f"status entry without a device id dropped: {str(raw)[:120]}")
                continue
            seen.add(address)
            self._device(address, raw)
        for address in [a for a, online in self._online.items() if online and a not in seen]:
            # A device the gateway no longer lists cannot be reached through it.
            self._presence(address, False)
        return True

    def _device(self, address: str, raw: dict[str, Any]) -> None:
        try:
            status = self.parse(address, raw)
        except StatusParseError as exc:
            self._note(address, f"dropped status: {exc}")
            return
        self._note(address, None)
        if self._online.get(address) != status["online"]:
            self._presence(address, status["online"])
        # An offline device's entry is the gateway's memory of it, not news from the device.
        if status["online"] and self._last.get(address) != raw:
            self._last[address] = raw
            self._deliver(self.sink.status, address, status)

    def _presence(self, address: str, online: bool) -> None:
        self._online[address] = online
        if not online:
            self._last.pop(address, None)  # report it afresh when it comes back
        self._deliver(self.sink.presence, address, online)

    def _deliver(self, fn: Callable[[str, str, Any], None], address: str, value: Any) -> None:
        if self._stop.is_set():
            return  # closed while a poll was in flight: the hub no longer listens
        try:
            fn(self.vendor, address, value)
        except Exception as exc:  # noqa: BLE001 - a faulty sink must not kill the poller
            log.warning("%s: sink failed for %s: %r", self.vendor, address, exc)
