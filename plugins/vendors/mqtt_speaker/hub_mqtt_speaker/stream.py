"""How a simulated speaker listens to a relay: one HTTP connection to the stream URL, read for as
long as it relays, counting the bytes that arrive (and how many times it had to connect), so a
test sees that audio really reached the device and that a fallback did not cut it off.

Like a real player, it connects again (every RETRY_S) when the stream is not there yet or the
connection ends, until the relay stops. A simulator never leaves the machine: only loopback URLs
are fetched. Runs on a thread of its own, never on the fleet's loop thread. Independent of `hub`.
"""
from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

RETRY_S = 0.5
TIMEOUT_S = 10.0


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RelayStream:
    """One relay's stream, open from start() to close()."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.bytes_received = 0
        self.connects = 0  # connections that got an answer 200: 1 when a fallback kept it connected
        self.error: str | None = None  # the last reason it was not receiving
        self.open = False
        self._stop = threading.Event()
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> RelayStream:
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname:
            self.error = f"cannot relay a {parts.scheme or 'schemeless'} URL (the simulator reads http)"
            return self
        if not _loopback(parts.hostname):
            self.error = f"the simulator fetches loopback streams only, not {parts.hostname}"
            return self
        self.open = True
        self._thread = threading.Thread(target=self._run, args=(parts,), daemon=True,
                                        name=f"relay-stream {parts.path}")
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            conn = self._conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)  # wakes the reading thread at once
            except OSError:
                pass
        if self._thread is not None:  # short: the fleet's loop thread may be the one waiting
            self._thread.join(1.0)
        self.open = False

    def report(self) -> dict[str, Any]:
        """What the device says about the stream (an ack's state): bytes and connections."""
        return {"relay_bytes": self.bytes_received, "relay_connects": self.connects}

    def _run(self, parts: Any) -> None:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        while not self._stop.is_set():
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT_S)
            with self._lock:
                self._conn = conn
            try:
                conn.request("GET", path or "/", headers={"User-Agent": "hub-mqtt-sim", "Icy-MetaData": "0"})
                resp = conn.getresponse()
                if resp.status != 200:
                    self.error = f"stream answered HTTP {resp.status}"
                else:
                    self.connects += 1
                    self.error = None
                    while not self._stop.is_set():
                        chunk = resp.read1(4096)
                        if not chunk:
                            self.error = "the stream ended"
                            break
                        self.bytes_received += len(chunk)
            except (OSError, http.client.HTTPException) as exc:
                if not self._stop.is_set():
                    self.error = f"stream: {type(exc).__name__}: {exc}"
            finally:
                conn.close()
            self._stop.wait(RETRY_S)


def follow(streams: list[RelayStream], relaying_url: str | None) -> None:
    """Make the newest of `streams` match what the device does: open on `relaying_url` (None when
    it does not relay). A relay of the same URL keeps its connection."""
    current = streams[-1] if streams and streams[-1].open else None
    if current is not None and current.url == relaying_url:
        return
    if current is not None:
        current.close()
    if relaying_url:
        streams.append(RelayStream(relaying_url).start())


def last_report(streams: list[RelayStream]) -> dict[str, Any] | None:
    return streams[-1].report() if streams else None
