"""Fixtures for the snapcast tests: real snapserver/snapclient processes on free loopback ports,
each lab in a temp dir of its own, and every process ended (and checked gone) afterwards."""
from __future__ import annotations

import faulthandler
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from hub.addresses import set_default_policy
from hub.testing import loopback_address_policy

from hub_snapcast.lab import SnapLab, binary

TEST_DEADLINE_S = 240  # no single test may hang the run longer than this


@pytest.fixture(autouse=True)
def _watchdog() -> Iterator[None]:
    faulthandler.dump_traceback_later(TEST_DEADLINE_S, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


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


@pytest.fixture(autouse=True)
def _devices_on_loopback() -> Iterator[None]:
    """Adapters built by hand reach the simulators on loopback ports (hub.addresses)."""
    set_default_policy(loopback_address_policy())
    yield
    set_default_policy(None)
