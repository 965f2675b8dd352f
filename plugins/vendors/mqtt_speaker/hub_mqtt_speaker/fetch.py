"""How a simulated speaker fetches the audio of a `play`: like a player that streams, it asks for
the first bytes with a Range request, then for the rest, and keeps what it got so a test can check
it (statuses, bytes, sha256). Runs on a worker thread, never on the fleet's loop thread: a slow
server must not stall the other devices. Independent of `hub`.
"""
from __future__ import annotations

import hashlib
import http.client
import re
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

FIRST_BYTES = 16 * 1024  # what a player buffers before it starts
TIMEOUT_S = 10.0
MAX_BYTES = 200 * 1024 * 1024  # a simulated device has finite memory too
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass
class MediaFetch:
    """One fetch of a play's audio, as the device saw it."""

    url: str
    statuses: list[int] = field(default_factory=list)  # one per request: 206, 206 when all went well
    ranges: list[str] = field(default_factory=list)  # the Range header of each request
    data: bytes = field(default=b"", repr=False)
    sha256: str | None = None  # of `data`, when the whole object arrived
    error: str | None = None  # why the device could not play it; None when it could

    @property
    def ok(self) -> bool:
        return self.error is None


def fetch_media(url: str, expected_sha256: str | None = None, first_bytes: int = FIRST_BYTES,
                timeout: float = TIMEOUT_S) -> MediaFetch:
    """GET `url` in two Range requests (bytes=0-N, then the rest). A refusal, a broken range or a
    digest other than `expected_sha256` makes `error` say what went wrong."""
    got = MediaFetch(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        got.error = f"cannot fetch {parts.scheme or 'a schemeless'} URL"
        return got
    try:
        total = _range(got, parts, 0, first_bytes - 1, timeout)
        if got.error is None and total is not None and len(got.data) < total:
            _range(got, parts, len(got.data), None, timeout)
    except (OSError, http.client.HTTPException) as exc:
        got.error = f"audio fetch failed: {type(exc).__name__}: {exc}"
    if got.error is None:
        got.sha256 = hashlib.sha256(got.data).hexdigest()
        if expected_sha256 and got.sha256 != expected_sha256:
            got.error = f"audio sha256 {got.sha256} is not the {expected_sha256} the command names"
    return got


def _range(got: MediaFetch, parts: SplitResult, start: int, end: int | None, timeout: float) -> int | None:
    """One Range request appended to `got`; returns the object's full length (None: unknown)."""
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname or "", parts.port, timeout=timeout)
    wanted = f"bytes={start}-{'' if end is None else end}"
    got.ranges.append(wanted)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path or "/", headers={"Range": wanted, "User-Agent": "hub-mqtt-sim"})
        resp = conn.getresponse()
        got.statuses.append(resp.status)
        body = resp.read(MAX_BYTES + 1)
        if resp.status == 200 and start == 0:  # a server without ranges sends it all: a player copes
            got.data = body
            return len(body)
        if resp.status != 206:
            got.error = f"audio fetch refused: HTTP {resp.status} {_reason(body, resp.reason)}"
            return None
        m = _CONTENT_RANGE.fullmatch(resp.getheader("Content-Range") or "")
        if m is None or int(m.group(1)) != start or len(body) != int(m.group(2)) - start + 1:
            got.error = f"audio fetch: a 206 whose Content-Range {resp.getheader('Content-Range')!r} does not " \
                        f"match the {len(body)} bytes asked from {start}"
            return None
        got.data += body
        if len(got.data) > MAX_BYTES:
            got.error = f"audio larger than {MAX_BYTES} bytes"
            return None
        return None if m.group(3) == "*" else int(m.group(3))
    finally:
        conn.close()


def _reason(body: bytes, fallback: str) -> str:
    text = body[:300].decode("utf-8", "replace")
    m = re.search(r'"message"\s*:\s*"([^"]*)"', text)
    return m.group(1) if m else fallback
