"""pytest's log capture walks logging's loggers at every test phase while the hub's threads may
name new ones; the suite and the conformance runs guard the registry (hub.testing)."""
from __future__ import annotations

import logging
import uuid

from hub.testing import guard_logger_registry


def test_walking_the_loggers_survives_a_new_one_named_meanwhile() -> None:
    guard_logger_registry()  # done by the root conftest already; idempotent
    walk = iter(logging.Logger.manager.loggerDict.values())
    next(walk)
    logging.getLogger(f"hub.test.named-meanwhile-{uuid.uuid4().hex}")  # as a paho thread would
    assert list(walk)  # a plain dict raises "dictionary changed size during iteration" here


def test_the_guard_keeps_every_logger_and_getLogger_still_finds_them() -> None:
    name = f"hub.test.kept-{uuid.uuid4().hex}"
    before = logging.getLogger(name)
    guard_logger_registry()
    assert logging.getLogger(name) is before
    assert logging.Logger.manager.loggerDict[name] is before
