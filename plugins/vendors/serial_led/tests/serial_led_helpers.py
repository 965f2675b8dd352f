"""Helpers shared by the serial_led tests (a uniquely named module, so it cannot be shadowed by
another suite's helpers when the whole repository is collected at once)."""
from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from hub.vendor import DeviceRef, Envelope, Outgoing
from hub.testing import RecordingSink, wait_until  # noqa: F401 - the tests import them from here
from hub.ports import free_port

VENDOR = "serial_led"
ALL_CAPS = ["led.text", "led.text_unicode", "led.brightness", "power.switch", "status.heartbeat", "status.faults"]


def envelope(verb: str, params: dict[str, Any] | None = None, content: dict[str, Any] | None = None,
             expires_in_s: float = 300.0) -> Envelope:
    return Envelope(command_id=f"cmd-{uuid.uuid4().hex[:12]}", verb=verb, params=params or {}, priority="normal",
                    expires_at=datetime.now(timezone.utc) + timedelta(seconds=expires_in_s), content=content)


def device(address: str, *, device_id: str | None = None, capabilities: list[str] | None = None,
           **config: Any) -> DeviceRef:
    return DeviceRef(id=device_id or f"dev-{address.rpartition('#')[2]}", address=address, kind="led_board",
                     capabilities=frozenset(ALL_CAPS if capabilities is None else capabilities), config=config)


def outgoing(dev: DeviceRef, verb: str, params: dict[str, Any] | None = None) -> Outgoing:
    return Outgoing(dev, envelope(verb, params))




def require_socat() -> str:
    """socat's path. A missing socat fails the test: the pty path must be exercised, not skipped."""
    path = shutil.which("socat")
    assert path, "socat is not installed (apt-get install socat): the serial_led pty tests need it"
    return path


def await_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The next line a child prints, or "" after `timeout` (a hung child must not hang the test)."""
    out: list[str] = []
    stdout = proc.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: out.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return out[0] if out else ""


def stop_child(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> int:
    """Ask a child to stop with `sig`, kill it if it does not; its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)
