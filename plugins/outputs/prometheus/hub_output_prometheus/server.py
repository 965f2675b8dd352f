"""The scrape endpoint: a small threaded HTTP server of its own, on its own port (loopback by
default), answering GET <path> with the registry's metrics, behind a bearer token or a user and
password when configured.

Why its own port rather than a route of the hub's API: the figures are computed by the outputs
runner's process, which holds the output; the API's processes (gunicorn workers) do not run
outputs. Prometheus is usually on the same host or reaches the hub over a private link; the port
is loopback unless configured otherwise, and then only with credentials (see plugin.ConfigSchema).
"""
from __future__ import annotations

import base64
import hmac
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

StartResponse = Callable[..., Any]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in progress never holds up the runner's stop


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # one line per scrape every few seconds would drown the runner's log


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def authorizer(bearer_token: str | None, username: str | None, password: str | None) -> Callable[[str], bool]:
    """Whether an Authorization header value is accepted: anything when no credentials are set."""
    def check(header: str) -> bool:
        if bearer_token is None and username is None:
            return True
        scheme, _, value = header.partition(" ")
        if bearer_token is not None and scheme.lower() == "bearer" and _same(value.strip(), bearer_token):
            return True
        if username is not None and scheme.lower() == "basic":
            try:
                user, _, pw = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return _same(user, username) & _same(pw, password or "")
        return False
    return check


def metrics_app(registry: CollectorRegistry, path: str, allowed: Callable[[str], bool],
                realm: str = "hub metrics") -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI application: 404 off `path`, 401 without accepted credentials, else the metrics."""
    inner = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != path:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [f"not found; the metrics are at {path}\n".encode()]
        if not allowed(environ.get("HTTP_AUTHORIZATION", "")):
            start_response("401 Unauthorized", [("Content-Type", "text/plain; charset=utf-8"),
                                                ("WWW-Authenticate", f'Basic realm="{realm}"')])
            return [b"credentials required\n"]
        return inner(environ, start_response)
    return app


class MetricsServer:
    """`start()` binds (OSError when the port is taken), `stop()` closes."""

    def __init__(self, host: str, port: int, app: Callable[..., Iterable[bytes]]) -> None:
        self.host, self.port, self.app = host, port, app
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._server = make_server(self.host, self.port, self.app, server_class=_ThreadingServer,
                                   handler_class=_QuietHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name=f"hub-metrics-{self.port}", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
