"""Helpers shared by the snapcast tests (a uniquely named module, so it cannot be shadowed by
another suite's helpers when the whole repository is collected at once)."""
from __future__ import annotations

import http.server
import socketserver
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hub.plugins import Plugins
from hub.testing import HubHarness
from hub.vendor import DeviceRef, Envelope, Outgoing

from hub_snapcast.lab import SnapLab
from hub.testing import RecordingSink as _RecordingSink
from hub.testing import wait_until as _wait_until


def envelope(verb: str, params: dict[str, Any] | None = None, content: dict[str, Any] | None = None) -> Envelope:
    return Envelope(command_id=f"cmd-{uuid.uuid4().hex[:12]}", verb=verb, params=params or {}, priority="normal",
                    expires_at=datetime.now(timezone.utc) + timedelta(minutes=5), content=content)


def outgoing(address: str, env: Envelope) -> Outgoing:
    return Outgoing(DeviceRef(id=f"dev-{address}", address=address, kind="speaker"), env)


def adapter_config(lab: SnapLab, **extra: Any) -> dict[str, Any]:
    # Short timeouts and polls: the tests wait on them, and every wait has a bound.
    return {"control_port": lab.control_port, "timeout_s": 3.0, "poll_interval_s": 2.0, "reconnect_max_s": 1.0,
            **extra}


def harness(workdir: Path, lab: SnapLab, **config: Any) -> HubHarness:
    """A whole hub in this process, with only this plugin loaded (sibling plugins being built in
    the same tree cannot break these tests) and the brief's retry schedule."""
    plugins = Plugins()
    plugins.load_entry_points(only={"snapcast"})
    return HubHarness(workdir, "snapcast", adapter_config(lab, **config), plugins=plugins,
                      retry_backoff_s=(0.1, 0.2))


class LiveAudio:
    """An endless raw PCM stream over HTTP on loopback: what a radio relay fetches, minus the
    codec (the test relay's decoder is curl, so the stream is already 48000:16:2 PCM)."""

    def __init__(self) -> None:
        halt = self._halt = threading.Event()
        frame = (1500).to_bytes(2, "little", signed=True) * 2 + (-1500).to_bytes(2, "little", signed=True) * 2

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                self.send_response(200)
                self.send_header("Content-Type", "audio/L16;rate=48000;channels=2")
                self.end_headers()
                chunk = frame * 2400  # 100 ms
                try:
                    while not halt.is_set():
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        time.sleep(0.1)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/live.pcm"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._halt.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


class RecordingSink(_RecordingSink):
    """The hub's recording sink with the longer waits real snapserver processes need."""

    def __init__(self) -> None:
        super().__init__(wait_timeout=15.0)


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, interval: float = 0.05) -> bool:
    return _wait_until(predicate, timeout, interval)
