"""Fixtures for the event-stream tests: webhook receivers on loopback, outputs that are always
closed, the real Mosquitto, and a guard that fails any connection off loopback."""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.addresses import set_default_policy
from hub.testing import loopback_address_policy
from hub.testing_fixtures import broker, topic_prefix, watchdog  # noqa: F401 - fixtures

from hub_output_events.mqtt_output import MqttEventOutput
from hub_output_events.webhook_output import WebhookOutput

from events_helpers import SECRET, Receiver

_watchdog = watchdog(120)  # no single test may hang the run
prefix = topic_prefix("hubtest/events")


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never send anything off this machine; the hub's own services stay refused."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            assert ipaddress.ip_address(address[0].split("%")[0]).is_loopback, f"connection to {address}"
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    set_default_policy(loopback_address_policy())
    yield
    set_default_policy(None)


@pytest.fixture
def receivers() -> Iterator[Callable[[], Receiver]]:
    made: list[Receiver] = []

    def make() -> Receiver:
        made.append(Receiver())
        return made[-1]

    yield make
    for r in made:
        r.down()


@pytest.fixture
def make_webhooks(tmp_path: Path) -> Iterator[Callable[..., WebhookOutput]]:
    """A configured event_webhooks output (fast backoff) for receivers; closed after the test."""
    outputs: list[WebhookOutput] = []

    def make(*targets: Receiver, state_dir: Path | None = None, **settings: Any) -> WebhookOutput:
        hooks = settings.pop("webhooks", None) or [
            {"name": f"ioc{i}", "url": r.url, "secret": SECRET} for i, r in enumerate(targets)]
        raw = {"webhooks": hooks, "state_dir": str(state_dir or tmp_path / "webhooks"), "timeout_s": 2,
               "backoff_initial_s": 0.05, "backoff_max_s": 0.4, **settings}
        outputs.append(WebhookOutput.configured(raw))
        return outputs[-1]

    yield make
    for output in outputs:
        output.close(timeout=5)


@pytest.fixture
def make_mqtt(tmp_path: Path, broker: tuple[str, int], prefix: str) -> Iterator[Callable[..., MqttEventOutput]]:
    outputs: list[MqttEventOutput] = []

    def make(**settings: Any) -> MqttEventOutput:
        raw = {"host": broker[0], "port": broker[1], "topic_prefix": prefix, "state_dir": str(tmp_path / "mqtt"),
               "backoff_initial_s": 0.05, "backoff_max_s": 0.5, "ack_timeout_s": 2, **settings}
        outputs.append(MqttEventOutput.configured(raw))
        return outputs[-1]

    yield make
    for output in outputs:
        output.close(timeout=5)
