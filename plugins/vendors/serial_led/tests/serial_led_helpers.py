"""Helpers shared by the serial_led tests (a uniquely named module, so it cannot be shadowed by
another suite's helpers when the whole repository is collected at once)."""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from hub.vendor import Ack, DeviceRef, Envelope, Outgoing

VENDOR = "serial_led"
ALL_CAPS = ["led.text", "led.text_unicode", "led.brightness", "power.switch", "status.heartbeat", "status.faults"]


def envelope(verb: str, params: dict[str, Any] | None = None, content: dict[str, Any] | None = None,
             expires_in_s: float = 300.0) -> Envelope:
    return Envelope(command_id=f"cmd-{uuid.uuid4().hex[:12]}", verb=verb, params=params or {}, priority="normal",
                    expires_at=datetime.now(timezone.utc) + timedelta(seconds=expires_in_s), content=content)


def device(address: str, *, device_id: str | None = None, capabilities: list[str] | None = None,
           **config: Any) -> DeviceRef:
    return DeviceRef(id=device_id or f"dev-{address.rpartition('#')[2]}", address=address, kind="led_board",
                     capabilities=frozenset(ALL_CAPS if capabilities is None else capabilities), config=config)


def outgoing(dev: DeviceRef, verb: str, params: dict[str, Any] | None = None) -> Outgoing:
    return Outgoing(dev, envelope(verb, params))


def free_port() -> int:
    """A loopback TCP port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_socat() -> str:
    """socat's path. A missing socat fails the test: the pty path must be exercised, not skipped."""
    path = shutil.which("socat")
    assert path, "socat is not installed (apt-get install socat): the serial_led pty tests need it"
    return path


def await_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The next line a child prints, or "" after `timeout` (a hung child must not hang the test)."""
    out: list[str] = []
    stdout = proc.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: out.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return out[0] if out else ""


def stop_child(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> int:
    """Ask a child to stop with `sig`, kill it if it does not; its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class RecordingSink:
    """A thread-safe ResultSink that remembers what it is handed."""

    def __init__(self) -> None:
        self.statuses: list[tuple[str, dict[str, Any]]] = []
        self.presence_events: list[tuple[str, bool]] = []
        self.acks: list[tuple[str, Ack]] = []
        self.vendors: set[str] = set()
        self._lock = threading.Lock()

    def ack(self, vendor: str, address: str, ack: Ack) -> None:
        with self._lock:
            self.vendors.add(vendor)
            self.acks.append((address, ack))

    def status(self, vendor: str, address: str, status: dict[str, Any]) -> None:
        with self._lock:
            self.vendors.add(vendor)
            self.statuses.append((address, status))

    def presence(self, vendor: str, address: str, online: bool) -> None:
        with self._lock:
            self.vendors.add(vendor)
            self.presence_events.append((address, online))

    def statuses_for(self, address: str) -> list[dict[str, Any]]:
        with self._lock:
            return [s for a, s in self.statuses if a == address]

    def presence_for(self, address: str) -> list[bool]:
        with self._lock:
            return [on for a, on in self.presence_events if a == address]
