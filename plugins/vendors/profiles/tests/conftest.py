"""Fixtures for the profiles tests: a real Mosquitto broker, one random topic prefix per test,
HUB_PROFILE_PATH in a temporary directory, and simulators, harnesses and listeners that are
always stopped."""
from __future__ import annotations

import faulthandler
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from hub.addresses import set_default_policy
from hub.testing import HubHarness, loopback_address_policy

from hub_profiles.modbus_sim import ProfileModbusFleet
from hub_profiles.model import Profile
from hub_profiles.mqtt_sim import ProfileMqttFleet
from profiles_helpers import BROKER_HOST, BROKER_PORT, Wire, profiles_plugins

TEST_DEADLINE_S = 180  # no single test may hang the run longer than this


@pytest.fixture(autouse=True)
def _watchdog() -> Iterator[None]:
    faulthandler.dump_traceback_later(TEST_DEADLINE_S, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True)
def profile_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HUB_PROFILE_PATH for this test only: an empty directory unless the test writes to it,
    so a developer's own setting never leaks in."""
    d = tmp_path / "profiles"
    d.mkdir()
    monkeypatch.setenv("HUB_PROFILE_PATH", str(d))
    return d


@pytest.fixture(scope="session")
def broker() -> tuple[str, int]:
    try:
        socket.create_connection((BROKER_HOST, BROKER_PORT), timeout=2).close()
    except OSError as exc:
        pytest.skip(f"no MQTT broker at {BROKER_HOST}:{BROKER_PORT} ({exc}); "
                    "set HUB_TEST_MQTT_HOST/HUB_TEST_MQTT_PORT")
    return BROKER_HOST, BROKER_PORT


@pytest.fixture
def prefix() -> str:
    return f"hubtest/profiles/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def token() -> str:
    """Makes device addresses unique, so parallel runs never collide on the broker."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    """Everything a test starts is stopped here, last started first, whatever happened."""
    with ExitStack() as s:
        yield s


@pytest.fixture
def mqtt_fleet(broker: tuple[str, int], prefix: str, stack: ExitStack) -> Callable[..., ProfileMqttFleet]:
    def make(profile: Profile, addresses: list[str], **kw: Any) -> ProfileMqttFleet:
        kw.setdefault("status_interval", 1.0)
        fleet = ProfileMqttFleet(profile, broker[0], broker[1], prefix, addresses, **kw)
        fleet.start(timeout=20)
        stack.callback(fleet.stop, clear_retained=True)
        return fleet
    return make


@pytest.fixture
def modbus_fleet(stack: ExitStack) -> Callable[..., ProfileModbusFleet]:
    def make(profile: Profile, count: int = 1, **kw: Any) -> ProfileModbusFleet:
        fleet = ProfileModbusFleet(profile, count=count, **kw)
        fleet.start()
        stack.callback(fleet.stop)
        return fleet
    return make


@pytest.fixture
def harness(tmp_path: Path, stack: ExitStack) -> Callable[..., HubHarness]:
    def make(vendor: str, config: dict[str, Any] | None = None, **kw: Any) -> HubHarness:
        kw.setdefault("plugins", profiles_plugins())
        hub = HubHarness(tmp_path, vendor, config or {}, **kw)
        hub.start()
        stack.callback(hub.stop)
        return hub
    return make


@pytest.fixture
def wire(broker: tuple[str, int], stack: ExitStack) -> Callable[[str], Wire]:
    def make(topic_filter: str) -> Wire:
        w = Wire(broker[0], broker[1], topic_filter)
        stack.callback(w.close)
        return w
    return make


@pytest.fixture(autouse=True)
def _devices_on_loopback() -> Iterator[None]:
    """Adapters built by hand reach the simulators on loopback ports (hub.addresses)."""
    set_default_policy(loopback_address_policy())
    yield
    set_default_policy(None)
