"""Fixtures of the conformance suite's own tests: the real services on loopback (hub.testing_fixtures)."""
from __future__ import annotations

from hub.testing_fixtures import services  # noqa: F401 - a fixture: fail loudly when Redis or Mosquitto is missing
