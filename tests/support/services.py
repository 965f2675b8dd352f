"""Where the tests find the real services, the repository and its test data."""
from __future__ import annotations

from pathlib import Path

from hub.testing_fixtures import MQTT_HOST, MQTT_PORT, REDIS_URL  # noqa: F401 - the tests import them from here

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"

