"""Fixtures for the hub_follow tests: hubs on loopback ports, always stopped."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hub.testing_fixtures import watchdog  # noqa: F401 - a fixture factory

from hub_follow_helpers import LoopbackHub, start_hub

_watchdog = watchdog(120)  # no test may hang the run longer than this


@pytest.fixture
def make_hub(tmp_path: Path) -> Iterator[Callable[[str], LoopbackHub]]:
    hubs: list[LoopbackHub] = []

    def make(name: str) -> LoopbackHub:
        path = tmp_path / name
        path.mkdir()
        hub = start_hub(name, path)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.stop()
