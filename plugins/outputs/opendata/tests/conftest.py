"""Fixtures for the open-data output's tests: a published folder of their own, always fresh."""
from __future__ import annotations

from pathlib import Path

import pytest

from hub.testing_fixtures import watchdog

from hub_output_opendata.plugin import OpenDataOutput
from hub_output_opendata.testing import StatisticsContext

_watchdog = watchdog(120)  # no single test may hang the run


@pytest.fixture
def context() -> StatisticsContext:
    return StatisticsContext()


@pytest.fixture
def published(tmp_path: Path) -> Path:
    return tmp_path / "public" / "thong-ke"


@pytest.fixture
def output(published: Path, context: StatisticsContext) -> OpenDataOutput:
    out = OpenDataOutput.configured({"directory": str(published), "settle_s": 0})
    out.open(context)
    return out
