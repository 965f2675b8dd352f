"""Fixtures for the rss tests: a feed server on loopback, always stopped."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.testing_fixtures import watchdog

from rss_helpers import FeedServer

_watchdog = watchdog(120)  # no single test may hang the run


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.stop()
