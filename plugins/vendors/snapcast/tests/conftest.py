"""Fixtures for the snapcast tests: real snapserver/snapclient processes on free loopback ports,
each lab in a temp dir of its own, and every process ended (and checked gone) afterwards."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from hub.testing_fixtures import devices_on_loopback, watchdog

from hub_snapcast.lab import SnapLab, binary

_watchdog = watchdog(240)  # no single test may hang the run longer than this
_devices_on_loopback = devices_on_loopback()  # adapters built by hand reach the simulators


@pytest.fixture(scope="session")
def snapcast_installed() -> None:
    missing = [b for b in ("snapserver", "snapclient") if binary(b) is None]
    if missing:
        # Not a skip: these tests are the plugin's only proof, and services.sh installs both.
        pytest.fail(f"{' and '.join(missing)} not installed; run scripts/services.sh")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


MakeLab = Callable[..., SnapLab]


@pytest.fixture
def make_lab(snapcast_installed: None) -> Iterator[MakeLab]:
    labs: list[SnapLab] = []
    started: list[int] = []

    def make(clients: Iterable[str] = (), streams: Iterable[str] = ("default", "bulletin"), **kw: Any) -> SnapLab:
        lab = SnapLab(streams, **kw)
        labs.append(lab)
        lab.start()
        lab.add_clients(list(clients), timeout=30)
        started.extend(lab.pids())
        return lab

    yield make
    for lab in labs:
        started.extend(lab.pids())  # restarted servers and clients have new pids
        lab.stop()
    left = sorted({p for p in started if _alive(p)})
    assert not left, f"processes left behind: {left}"
