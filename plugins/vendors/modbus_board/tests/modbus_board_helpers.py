"""Helpers shared by the modbus_board tests (a uniquely named module, so another suite's helpers
cannot shadow it when the whole repository is collected at once)."""
from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from hub.plugins import Plugins
from hub.vendor import Ack, DeviceRef, Envelope, Outgoing

VENDOR = "modbus_board"
VIETNAMESE = "Thông báo khẩn: bão số 3"
VIETNAMESE_ASCII = "Thong bao khan: bao so 3"

# Short timeouts keep fault tests quick; everything else leaves room for two shared cores.
FAST = {"timeout_s": 0.5, "poll_interval_s": 0.2, "offline_after_s": 2.5}


class RecordingSink:
    """A thread-safe ResultSink that remembers everything and lets tests wait for it."""

    def __init__(self) -> None:
        self.statuses: list[tuple[str, dict[str, Any]]] = []
        self.presence_events: list[tuple[str, bool]] = []
        self.acks: list[tuple[str, Ack]] = []
        self.vendors: set[str] = set()
        self._cond = threading.Condition()

    def ack(self, vendor: str, address: str, ack: Ack) -> None:
        with self._cond:
            self.vendors.add(vendor)
            self.acks.append((address, ack))
            self._cond.notify_all()

    def status(self, vendor: str, address: str, status: dict[str, Any]) -> None:
        with self._cond:
            self.vendors.add(vendor)
            self.statuses.append((address, status))
            self._cond.notify_all()

    def presence(self, vendor: str, address: str, online: bool) -> None:
        with self._cond:
            self.vendors.add(vendor)
            self.presence_events.append((address, online))
            self._cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def statuses_for(self, address: str) -> list[dict[str, Any]]:
        with self._cond:
            return [s for a, s in self.statuses if a == address]

    def presence_for(self, address: str) -> list[bool]:
        with self._cond:
            return [on for a, on in self.presence_events if a == address]


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def envelope(verb: str, params: dict[str, Any] | None = None, content: dict[str, Any] | None = None,
             expires_in_s: float = 300.0) -> Envelope:
    return Envelope(command_id=f"cmd-{uuid.uuid4().hex[:12]}", verb=verb, params=params or {}, priority="normal",
                    expires_at=datetime.now(timezone.utc) + timedelta(seconds=expires_in_s), content=content)


def device(address: str, kind: str = "led_board", capabilities: frozenset[str] = frozenset(),
           **config: Any) -> DeviceRef:
    return DeviceRef(id=f"dev-{address}", address=address, kind=kind, capabilities=capabilities, config=config)


def outgoing(address: str, env: Envelope, **config: Any) -> Outgoing:
    return Outgoing(device(address, **config), env)


def free_port() -> int:
    """A loopback TCP port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def only_this_plugin() -> Plugins:
    """Our plugin alone: sibling plugins being built in the same tree must not break our tests."""
    plugins = Plugins()
    plugins.load_entry_points(only={VENDOR})
    return plugins
