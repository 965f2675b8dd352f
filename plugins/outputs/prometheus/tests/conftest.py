"""Fixtures for the prometheus output's tests: a hub of their own, always closed."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.runtime import Runtime
from hub.testing_fixtures import services, watchdog  # noqa: F401 - services is a fixture

from prometheus_helpers import make_runtime

_watchdog = watchdog(180)  # no single test may hang the run


@pytest.fixture
def hub_rt(tmp_path: Path, services: None) -> Iterator[Runtime]:  # noqa: F811 - the fixture above
    rt = make_runtime(tmp_path)
    yield rt
    rt.redis.delete(f"{rt.settings.queue}:outputs")
    rt.close()
