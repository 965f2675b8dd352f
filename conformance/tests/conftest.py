"""Fixtures of the conformance suite's own tests: the real services on loopback."""
from __future__ import annotations

import os
import socket

import pytest
from redis import Redis

MQTT_HOST = os.environ.get("HUB_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("HUB_TEST_MQTT_PORT", "1883"))
REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def services() -> None:
    """Fail loudly (not skip) when Mosquitto or Redis is missing: `make services` starts them."""
    missing = []
    try:
        with socket.create_connection((MQTT_HOST, MQTT_PORT), timeout=1):
            pass
    except OSError:
        missing.append(f"MQTT broker at {MQTT_HOST}:{MQTT_PORT}")
    try:
        Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception:
        missing.append(f"Redis at {REDIS_URL}")
    if missing:
        pytest.fail("not running: " + ", ".join(missing))
