"""The demo's CAP feed: one storm warning (demo_data/bao-so-3.cap.xml) served over HTTP on loopback,
as a weather service's feed would serve it, for the demo's `cap` source to poll.

The shipped alert carries fixed times; the feed moves `sent`, `onset` and `expires` to the time of
the run when it serves it, because an alert that expired is never published (hub.content.intake)."""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hub.broadcast.programmes import LOCAL_TZ
from hub.ports import free_port

ALERT_FILE = Path(__file__).with_name("demo_data") / "bao-so-3.cap.xml"
PATH = "/cap/bao-so-3.xml"
VALID_FOR = timedelta(hours=6)


def alert_now(now: datetime | None = None) -> bytes:
    """The shipped alert with its times moved to `now` (sent a minute ago, expiring VALID_FOR later)."""
    now = (now or datetime.now(LOCAL_TZ)).astimezone(LOCAL_TZ).replace(microsecond=0)
    text = ALERT_FILE.read_text(encoding="utf-8")
    # CAP's <sent> is written out whole: a bare "sent" would read as a delivery state (test_single_source)
    text = re.sub(r"<sent>[^<]*</sent>", f"<sent>{(now - timedelta(minutes=1)).isoformat()}</sent>", text)
    for tag, at in (("onset", now), ("expires", now + VALID_FOR)):
        text = re.sub(rf"<{tag}>[^<]*</{tag}>", f"<{tag}>{at.isoformat()}</{tag}>", text)
    return text.encode("utf-8")


def alert_areas() -> list[str]:
    """The administrative codes the shipped alert names."""
    return re.findall(r"<value>(\d+)</value>", ALERT_FILE.read_text(encoding="utf-8"))


class _Handler(BaseHTTPRequestHandler):
    body: bytes = b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.split("?")[0] != PATH:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/cap+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_: Any) -> None:  # the demo's story is the output, not an access log
        pass


class CapFeed:
    """The feed on 127.0.0.1 at a free port, on a thread of its own, until stop()."""

    def __init__(self) -> None:
        handler = type("CapHandler", (_Handler,), {"body": alert_now()})
        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="demo-cap-feed", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{PATH}"

    def start(self) -> CapFeed:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
