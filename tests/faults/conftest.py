"""The fault tests' fixtures: private Redis and Mosquitto servers and a hub of subprocesses on
them (tests/support/fault_services.py)."""
from __future__ import annotations

from tests.support.fault_services import fault_hub, own_broker, own_redis  # noqa: F401 - fixtures
