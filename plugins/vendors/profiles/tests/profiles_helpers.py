"""Helpers shared by the profiles tests (a uniquely named module, so another suite's helpers
cannot shadow it when the whole repository is collected at once)."""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from hub.plugins import Plugins
from hub.testing_fixtures import MQTT_HOST, MQTT_PORT
from hub.vendor import DeviceRef, Envelope, Outgoing

from hub_profiles.loader import builtin_dir
from hub_profiles.model import Profile
from hub_profiles.validate import load_file
from hub.ports import free_port

BROKER_HOST, BROKER_PORT = MQTT_HOST, MQTT_PORT  # the broker the hub's tests use (HUB_TEST_MQTT_*)

# A profile of an LED board that answers on a reply topic (tests of replies and of sessions).
BOARD = """\
name: reply_board
title: LED board that answers with the command id
version: "1"
device_kinds: [led_board]
capabilities: [led.text, led.text_unicode, power.switch]
driver: mqtt
mqtt:
  prefix: boards
  ack: {mode: reply, topic: "{prefix}/{address}/ack", id: result.id, ok: result.status, ok_values: [done],
        error: result.error}
commands:
  led_show:
    topic: "{prefix}/{address}/show"
    payload: {id: "{command_id}", text: "{text}", effect: "{params.effect}", seconds: "{params.duration_s}"}
    values: {}
  led_clear:
    topic: "{prefix}/{address}/show"
    payload: {id: "{command_id}", text: ""}
  power:
    topic: "{prefix}/{address}/power"
    payload: {id: "{command_id}", on: "{params.on}"}
    ack: none
"""


def builtin(name: str) -> Profile:
    profile, errors = load_file(builtin_dir() / f"{name}.yaml")
    assert profile is not None, errors
    return profile


def builtin_text(name: str) -> str:
    return (builtin_dir() / f"{name}.yaml").read_text(encoding="utf-8")


def profiles_plugins() -> Plugins:
    """Only this distribution's plugin: sibling plugins being built in the tree must not break us.
    Build it after HUB_PROFILE_PATH is set: vendors() reads the profiles then."""
    plugins = Plugins()
    plugins.load_entry_points(only={"profiles"})
    return plugins


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(interval)
    return predicate()




def envelope(verb: str, params: dict[str, Any] | None = None, content: dict[str, Any] | None = None,
             command_id: str | None = None) -> Envelope:
    return Envelope(command_id=command_id or f"cmd-{uuid.uuid4().hex[:12]}", verb=verb, params=params or {},
                    priority="normal", expires_at=datetime.now(timezone.utc) + timedelta(minutes=5), content=content)


def outgoing(address: str, env: Envelope, kind: str = "speaker",
             capabilities: frozenset[str] = frozenset()) -> Outgoing:
    return Outgoing(DeviceRef(id=f"dev-{address}", address=address, kind=kind, capabilities=capabilities), env)


class Wire:
    """Listens on the broker like a technician with mosquitto_sub: what really went out."""

    def __init__(self, host: str, port: int, topic_filter: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hubtest-wire-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv311)
        self.client.on_connect = lambda c, *a: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert self._subscribed.wait(10), f"the broker did not grant {topic_filter}"

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self._cond.notify_all()

    def on(self, topic: str) -> list[bytes]:
        with self._cond:
            return [p for t, p in self.messages if t == topic]

    def wait_for(self, topic: str, count: int = 1, timeout: float = 10.0) -> list[bytes]:
        with self._cond:
            self._cond.wait_for(lambda: len([1 for t, _ in self.messages if t == topic]) >= count, timeout)
        return self.on(topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def write_profile(directory: Path, filename: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_text(text, encoding="utf-8")
    return path
