"""Helpers shared by the mqtt_speaker tests (a uniquely named module, so it cannot be
shadowed by another test suite's helpers when the whole repository is collected at once)."""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from hub.vendor import Ack, DeviceRef, Envelope, Outgoing

BROKER_HOST = os.environ.get("HUB_TEST_MQTT_HOST", "127.0.0.1")
BROKER_PORT = int(os.environ.get("HUB_TEST_MQTT_PORT", "1883"))


class RecordingSink:
    """A thread-safe ResultSink that remembers everything and lets tests wait for it."""

    def __init__(self) -> None:
        self.acks: list[tuple[str, Ack]] = []
        self.statuses: list[tuple[str, dict[str, Any]]] = []
        self.presence_events: list[tuple[str, bool]] = []
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

    def acks_for(self, address: str) -> list[Ack]:
        with self._cond:
            return [a for addr, a in self.acks if addr == address]

    def ack_by_id(self, command_id: str) -> Ack | None:
        with self._cond:
            return next((a for _addr, a in self.acks if a.command_id == command_id), None)

    def statuses_for(self, address: str) -> list[dict[str, Any]]:
        with self._cond:
            return [s for addr, s in self.statuses if addr == address]


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def envelope(verb: str, params: dict[str, Any] | None = None, priority: str = "normal",
             content: dict[str, Any] | None = None, expires_in_s: float = 300.0,
             command_id: str | None = None) -> Envelope:
    return Envelope(command_id=command_id or f"cmd-{uuid.uuid4().hex[:12]}", verb=verb, params=params or {},
                    priority=priority, expires_at=datetime.now(timezone.utc) + timedelta(seconds=expires_in_s),
                    content=content)


def outgoing(address: str, env: Envelope, kind: str = "speaker", **config: Any) -> Outgoing:
    return Outgoing(DeviceRef(id=f"dev-{address}", address=address, kind=kind, config=config), env)


def free_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clear_retained(host: str, port: int, topics: list[str]) -> None:
    """Remove retained messages a test left on the broker (its persistence outlives the test)."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hubtest-clean-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv311)
    client.connect(host, port)
    client.loop_start()
    try:
        infos = [client.publish(t, b"", qos=1, retain=True) for t in topics]
        for info in infos:
            info.wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()
