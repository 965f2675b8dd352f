"""Helpers shared by the modbus_board tests (a uniquely named module, so another suite's helpers
cannot shadow it when the whole repository is collected at once)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from hub.plugins import Plugins
from hub.vendor import DeviceRef, Envelope, Outgoing
from hub.testing import RecordingSink, wait_until  # noqa: F401 - the tests import them from here
from hub.ports import free_port

VENDOR = "modbus_board"
VIETNAMESE = "Thông báo khẩn: bão số 3"
VIETNAMESE_ASCII = "Thong bao khan: bao so 3"

# Short timeouts keep fault tests quick; everything else leaves room for two shared cores.
FAST = {"timeout_s": 0.5, "poll_interval_s": 0.2, "offline_after_s": 2.5}


def envelope(verb: str, params: dict[str, Any] | None = None, content: dict[str, Any] | None = None,
             expires_in_s: float = 300.0) -> Envelope:
    return Envelope(command_id=f"cmd-{uuid.uuid4().hex[:12]}", verb=verb, params=params or {}, priority="normal",
                    expires_at=datetime.now(timezone.utc) + timedelta(seconds=expires_in_s), content=content)


def device(address: str, kind: str = "led_board", capabilities: frozenset[str] = frozenset(),
           **config: Any) -> DeviceRef:
    return DeviceRef(id=f"dev-{address}", address=address, kind=kind, capabilities=capabilities, config=config)


def outgoing(address: str, env: Envelope, **config: Any) -> Outgoing:
    return Outgoing(device(address, **config), env)




def only_this_plugin() -> Plugins:
    """Our plugin alone: sibling plugins being built in the same tree must not break our tests."""
    plugins = Plugins()
    plugins.load_entry_points(only={VENDOR})
    return plugins
