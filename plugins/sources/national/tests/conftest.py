"""Fixtures for the national tests: simulators on free loopback ports, always stopped."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hub.testing_fixtures import watchdog

from hub_source_national.simulator import Simulator

_watchdog = watchdog(120)  # no single test may hang the run


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def make(*args: Any, **kw: Any) -> Simulator:
        sim = Simulator(*args, **kw).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(make_sim: Callable[..., Simulator]) -> Simulator:
    return make_sim()
