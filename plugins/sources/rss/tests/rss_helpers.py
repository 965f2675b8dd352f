"""A feed server on a free loopback port for the rss tests: serves files from tests/data, answers
conditional GETs like a real web server, and has a path that never answers."""
from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DATA = Path(__file__).parent / "data"


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    gzip: bool = False
    hang: bool = False  # accept the request and never answer (until the server stops)
    location: str | None = None  # a Location header (with status 301/302: a redirect)


@dataclass
class FeedServer:
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (path, headers) in order

    def __post_init__(self) -> None:
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet test output
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                if route.hang:
                    server.stopping.wait(60)
                    return
                fresh = ((route.etag and self.headers.get("If-None-Match") == route.etag) or
                         (route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified))
                body = b"" if fresh else route.body
                if route.gzip and body:
                    body = gzip.compress(body)
                self.send_response(304 if fresh else route.status)
                if not fresh:
                    self.send_header("Content-Type", route.content_type)
                    self.send_header("Content-Length", str(len(body)))
                if route.gzip and body:
                    self.send_header("Content-Encoding", "gzip")
                for name, value in (("ETag", route.etag), ("Last-Modified", route.last_modified),
                                    ("Location", route.location)):
                    if value:
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="feed-server", daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, path: str, filename: str | None = None, **kw: object) -> str:
        """Serve tests/data/`filename` (or `body=`) at `path`; returns its URL."""
        if filename is not None:
            kw["body"] = (DATA / filename).read_bytes()
        self.routes[path] = Route(**kw)  # type: ignore[arg-type]
        return self.url(path)

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
