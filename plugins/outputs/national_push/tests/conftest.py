"""Fixtures for the national push's tests: the national system's simulator on a free loopback port
(hub_source_national.simulator), always stopped, and a hub stand-in with statistics."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.output import OutputContext
from hub.testing_fixtures import watchdog

from hub_output_national_push.plugin import NationalPushOutput
from hub_output_opendata.testing import StatisticsContext
from hub_source_national.simulator import REPORTS_PATH, Simulator

_watchdog = watchdog(120)  # no single test may hang the run


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(token="t-national-80") as started:
        yield started


@pytest.fixture
def context() -> StatisticsContext:
    return StatisticsContext()


@pytest.fixture
def make_output(sim: Simulator, tmp_path: Path, context: StatisticsContext) -> Callable[..., NationalPushOutput]:
    """A national push to the simulator, opened; settings override the test's defaults (last
    month only, no settling, its own state folder)."""

    def make(ctx: OutputContext | None = None, **settings: Any) -> NationalPushOutput:
        config = {"url": sim.url + REPORTS_PATH, "token": sim.token, "periods": ["month"], "catch_up": 1,
                  "settle_s": 0, "state_dir": str(tmp_path / "state"), **settings}
        out = NationalPushOutput.configured(config)
        out.open(ctx or context)  # type: ignore[arg-type]
        return out

    return make
