"""A simulated speaker fetches a play's audio like a streaming player — the first bytes, then the
rest, by Range requests — and keeps what it got; a refused fetch, a broken range or the wrong
digest is a failure with the reason. Against a small range-capable server on loopback."""
from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hub_mqtt_speaker.fetch import fetch_media

AUDIO = bytes(range(256)) * 300  # 76,800 bytes: more than the first range


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith("/refused"):
            self._send(403, b'{"message": "this media URL expired"}', {"Content-Type": "application/json"})
            return
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if m is None or self.path.startswith("/norange"):
            self._send(200, AUDIO)
            return
        start = int(m.group(1))
        end = min(int(m.group(2)) if m.group(2) else len(AUDIO) - 1, len(AUDIO) - 1)
        if self.path.startswith("/liar"):
            end = start + 9  # claims more than it sends
            self._send(206, AUDIO[start:start + 5], {"Content-Range": f"bytes {start}-{end}/{len(AUDIO)}"})
            return
        self._send(206, AUDIO[start:end + 1], {"Content-Range": f"bytes {start}-{end}/{len(AUDIO)}"})

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_fetches_first_bytes_then_the_rest(server: str) -> None:
    sha = hashlib.sha256(AUDIO).hexdigest()
    got = fetch_media(f"{server}/a.mp3?expires=1&sig=ab", sha, first_bytes=1000)
    assert got.ok and got.statuses == [206, 206] and got.ranges == ["bytes=0-999", "bytes=1000-"]
    assert got.data == AUDIO and got.sha256 == sha


def test_a_server_without_ranges_is_read_whole(server: str) -> None:
    got = fetch_media(f"{server}/norange.mp3")
    assert got.ok and got.statuses == [200] and got.data == AUDIO


@pytest.mark.parametrize("path, expected, why", [
    ("/refused.mp3", None, "HTTP 403 this media URL expired"),
    ("/liar.mp3", None, "does not match"),
    ("/a.mp3", "00" * 32, "is not the"),
])
def test_failures_say_why(server: str, path: str, expected: str | None, why: str) -> None:
    got = fetch_media(f"{server}{path}", expected, first_bytes=1000)
    assert not got.ok and why in (got.error or "")


def test_nothing_listening_is_a_failure_not_a_hang() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    got = fetch_media(f"http://127.0.0.1:{port}/a.mp3", timeout=2)
    assert not got.ok and "audio fetch failed" in (got.error or "")
