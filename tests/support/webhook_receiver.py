"""An operations centre's webhook endpoint on 127.0.0.1 for the outputs' end-to-end tests: checks
each request's signature with the events plugin's documented helper (as a receiver would), keeps
what it received in order, and can go down and come back on the same port."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hub.ports import free_port

from hub_output_events.signing import HEADER, SignatureError, verify


class Receiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.port = free_port()
        self.received: list[dict[str, Any]] = []  # envelopes with a good signature, in arrival order
        self.refused: list[str] = []  # why a request's signature was refused
        self._lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/hub"

    def types(self) -> list[str]:
        with self._lock:
            return [e["type"] for e in self.received]

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    verify(receiver.secret, self.headers.get(HEADER), raw, tolerance_s=300)
                except SignatureError as exc:
                    with receiver._lock:
                        receiver.refused.append(str(exc))
                    self.send_response(401)
                else:
                    with receiver._lock:
                        receiver.received.append(json.loads(raw))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def down(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
