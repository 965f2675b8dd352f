"""Fixtures for the serial_led tests: simulated buses and hub harnesses that are always stopped,
and a check that no test leaves a port, a poller or a socat behind."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.addresses import DEFAULT_SERIAL_PREFIXES, set_default_policy
from hub.plugins import Plugins
from hub.testing import HubHarness, loopback_address_policy
from hub.testing_fixtures import make_harness, stack  # noqa: F401 - fixtures

from hub_serial_led.bus import BUSES
from hub_serial_led.simulator import SerialBoardsSim
from serial_led_helpers import VENDOR, free_port, wait_until

MakeSim = Callable[..., SerialBoardsSim]
MakeHub = Callable[..., HubHarness]


def _our_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("serial_led", "serial-led-sim"))]


@pytest.fixture(autouse=True)
def _nothing_left_behind() -> Iterator[None]:
    yield
    assert wait_until(lambda: not BUSES.urls(), timeout=5), f"ports left open: {BUSES.urls()}"
    assert wait_until(lambda: not _our_threads(), timeout=10), f"threads left running: {_our_threads()}"


@pytest.fixture(autouse=True)
def _devices_here(tmp_path: Path) -> Iterator[None]:
    """Adapters built by hand reach the simulators: loopback ports, socat ptys, links in tmp_path
    (and TEST-NET-1, which some tests name for a converter whose open they fake)."""
    set_default_policy(loopback_address_policy("/dev/pts/", f"{tmp_path}/", networks=("192.0.2.0/24",)))
    yield
    set_default_policy(None)


@pytest.fixture
def make_sim() -> Iterator[MakeSim]:
    sims: list[SerialBoardsSim] = []

    def make(boards: Any = (5,), start: bool = True, **kw: Any) -> SerialBoardsSim:
        if kw.get("transport", "tcp") == "tcp" and not kw.get("port"):
            kw["port"] = free_port()  # a restarted bus must get its port back (hub/ports.py)
        sim = SerialBoardsSim(boards, **kw)
        sims.append(sim)
        return sim.start() if start else sim

    yield make
    for sim in sims:
        sim.stop()


@pytest.fixture
def plugins() -> Plugins:
    # Only ours: sibling plugins being built in the same tree must not break these tests.
    p = Plugins()
    p.load_entry_points(only={VENDOR})
    return p


@pytest.fixture
def lock_dir(tmp_path: Path) -> str:
    """Bus lock files of this test: the default directory is shared by every hub on the host."""
    return str(tmp_path / "locks")


@pytest.fixture
def make_hub(make_harness: MakeHub, tmp_path: Path, plugins: Plugins, lock_dir: str) -> MakeHub:
    def make(**config: Any) -> HubHarness:
        config.setdefault("lock_dir", lock_dir)
        config.setdefault("timeout_s", 0.5)
        config.setdefault("poll_interval_s", 0)  # fault tests count replies: no poll may take one
        return make_harness(VENDOR, config, plugins=plugins, retry_backoff_s=(0.1, 0.2),
                            device_serial_prefixes=(*DEFAULT_SERIAL_PREFIXES, "/dev/pts/", f"{tmp_path}/"))

    return make
