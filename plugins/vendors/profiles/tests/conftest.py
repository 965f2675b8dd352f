"""Fixtures for the profiles tests: a real Mosquitto broker, one random topic prefix per test,
HUB_PROFILE_PATH in a temporary directory, and simulators, harnesses and listeners that are
always stopped."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from hub.testing import HubHarness
from hub.testing_fixtures import (broker, devices_on_loopback, make_harness, stack, token,  # noqa: F401 - fixtures
                                  topic_prefix, watchdog)

from hub_profiles.modbus_sim import ProfileModbusFleet
from hub_profiles.model import Profile
from hub_profiles.mqtt_sim import ProfileMqttFleet
from profiles_helpers import Wire, profiles_plugins

_watchdog = watchdog(180)  # no single test may hang the run longer than this
_devices_on_loopback = devices_on_loopback()  # adapters built by hand reach the simulators
prefix = topic_prefix("hubtest/profiles")


@pytest.fixture(autouse=True)
def profile_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HUB_PROFILE_PATH for this test only: an empty directory unless the test writes to it,
    so a developer's own setting never leaks in."""
    d = tmp_path / "profiles"
    d.mkdir()
    monkeypatch.setenv("HUB_PROFILE_PATH", str(d))
    return d


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
def harness(make_harness: Callable[..., HubHarness]) -> Callable[..., HubHarness]:
    def make(vendor: str, config: dict[str, Any] | None = None, **kw: Any) -> HubHarness:
        kw.setdefault("plugins", profiles_plugins())
        return make_harness(vendor, config, **kw)
    return make


@pytest.fixture
def wire(broker: tuple[str, int], stack: ExitStack) -> Callable[[str], Wire]:
    def make(topic_filter: str) -> Wire:
        w = Wire(broker[0], broker[1], topic_filter)
        stack.callback(w.close)
        return w
    return make

