"""Helpers shared by the http_gateway tests (a uniquely named module, so it cannot be shadowed
by another test suite's helpers when the whole repository is collected at once)."""
from __future__ import annotations

import shutil
import subprocess
import threading
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hub.plugins import Plugins
from hub.vendor import DeviceRef, Envelope, Outgoing
from hub.testing import RecordingSink, wait_until  # noqa: F401 - the tests import them from here
from hub.ports import free_port

VENDOR = "http_gateway"


def only_this_plugin() -> Plugins:
    # Sibling plugins being built in the same tree must not break these tests.
    plugins = Plugins()
    plugins.load_entry_points(only={VENDOR})
    return plugins


def envelope(verb: str, params: dict[str, Any] | None = None, *, content: dict[str, Any] | None = None,
             priority: str = "normal", expires_in_s: float = 300.0, command_id: str | None = None) -> Envelope:
    return Envelope(command_id=command_id or f"cmd-{uuid.uuid4().hex[:12]}", verb=verb, params=params or {},
                    priority=priority, expires_at=datetime.now(timezone.utc) + timedelta(seconds=expires_in_s),
                    content=content)


def outgoing(address: str, env: Envelope) -> Outgoing:
    return Outgoing(DeviceRef(id=f"dev-{address}", address=address, kind="speaker"), env)


def ids(n: int, fmt: str = "GW{:05d}") -> list[str]:
    return [fmt.format(i) for i in range(1, n + 1)]




class CannedServer:
    """An HTTP server on loopback answering every request with one fixed response, for the
    answers a well-behaved simulator never gives (redirects, garbage)."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.hits: list[str] = []
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                canned.hits.append(f"{self.command} {self.path}")
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def __enter__(self) -> CannedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


def self_signed_cert(directory: Path) -> tuple[Path, Path] | None:
    """(cert, key) for 127.0.0.1 made with the openssl command, or None without it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "gw-cert.pem", directory / "gw-key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return cert, key
