"""pytest fixtures for a plugin's test suite, written once for the hub's own tests, the built-in
plugins' suites, the conformance suite's tests and a third-party vendor's suite (which would
otherwise each copy them into their conftest.py).

A conftest imports the fixtures it uses (pytest finds fixtures in a conftest's namespace; a
`pytest_plugins` line is refused in a conftest below the rootdir, which is where plugin suites
live):

    from hub.testing_fixtures import broker, make_harness, sink, stack  # noqa: F401 - fixtures

Fixtures that run for every test of a suite (a watchdog, the address policy for devices on
loopback, a topic prefix) are made by factories, so each suite opts in with its own values:

    _watchdog = watchdog(180)
    _devices_on_loopback = devices_on_loopback()
    prefix = topic_prefix("hubtest/my_vendor")
"""
from __future__ import annotations

import faulthandler
import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from hub.addresses import set_default_policy
from hub.testing import HubHarness, RecordingSink, loopback_address_policy

# Where the real services answer: the ones `make services` (scripts/services.sh) starts.
MQTT_HOST = os.environ.get("HUB_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("HUB_TEST_MQTT_PORT", "1883"))
REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# -- fixture factories: a suite opts in, with its own values --------------------------------------
def watchdog(deadline_s: float) -> Any:
    """An autouse fixture that ends the run with every thread's traceback when one test hangs
    longer than `deadline_s` (a stuck network wait must not hang CI for ever)."""

    @pytest.fixture(autouse=True, name="_watchdog")
    def _watchdog() -> Iterator[None]:
        faulthandler.dump_traceback_later(deadline_s, exit=True, file=sys.stderr)
        yield
        faulthandler.cancel_dump_traceback_later()

    return _watchdog


def devices_on_loopback(*serial_prefixes: str, networks: tuple[str, ...] = ()) -> Any:
    """An autouse fixture: adapters built by hand reach the simulators on loopback ports (and
    the serial ports and networks named here) for the test, and the default policy is back after."""

    @pytest.fixture(autouse=True, name="_devices_on_loopback")
    def _devices_on_loopback() -> Iterator[None]:
        set_default_policy(loopback_address_policy(*serial_prefixes, networks=networks))
        yield
        set_default_policy(None)

    return _devices_on_loopback


def topic_prefix(root: str) -> Any:
    """A `prefix` fixture: an MQTT topic prefix under `root` of this test alone."""

    @pytest.fixture(name="prefix")
    def prefix() -> str:
        return f"{root}/{uuid.uuid4().hex[:12]}"

    return prefix


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def services() -> None:
    """Fail loudly (not skip) when Mosquitto or Redis is missing: `make services` starts them."""
    from redis import Redis

    missing = []
    if not _reachable(MQTT_HOST, MQTT_PORT):
        missing.append(f"MQTT broker at {MQTT_HOST}:{MQTT_PORT}")
    try:
        Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception:
        missing.append(f"Redis at {REDIS_URL}")
    if missing:
        pytest.fail("not running: " + ", ".join(missing) + " (run `make services`)")


@pytest.fixture(scope="session")
def broker() -> tuple[str, int]:
    """(host, port) of the MQTT broker; the tests that need one skip, saying so, when none answers."""
    try:
        socket.create_connection((MQTT_HOST, MQTT_PORT), timeout=2).close()
    except OSError as exc:
        pytest.skip(f"no MQTT broker at {MQTT_HOST}:{MQTT_PORT} ({exc}); "
                    "set HUB_TEST_MQTT_HOST/HUB_TEST_MQTT_PORT")
    return MQTT_HOST, MQTT_PORT


@pytest.fixture
def token() -> str:
    """Makes device addresses (MQTT client ids among them) unique, so parallel runs never collide."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    """Everything a test starts is stopped here, last started first, whatever happened."""
    with ExitStack() as s:
        yield s


@pytest.fixture
def sink() -> RecordingSink:
    """A ResultSink that remembers what an adapter's listener reports."""
    return RecordingSink()


MakeHarness = Callable[..., HubHarness]


@pytest.fixture
def make_harness(tmp_path: Path, stack: ExitStack) -> MakeHarness:
    """make(vendor, config, **HubHarness options): a started HubHarness, stopped when the test ends."""

    def make(vendor: str, config: dict[str, Any] | None = None, **kw: Any) -> HubHarness:
        hub = HubHarness(tmp_path, vendor, config or {}, **kw)
        hub.start()
        stack.callback(hub.stop)
        return hub

    return make
