"""Sending one envelope to one webhook URL: a signed POST over a kept-alive connection.

Redirects are not followed (a 3xx is a refusal): the operator configured this URL, and a
redirect must not carry the hub's events, signed, somewhere else.
"""
from __future__ import annotations

import http.client
import ssl
from typing import Any
from urllib.parse import urlsplit

from hub.addresses import AddressPolicy, default_policy

from hub_output_events import __version__
from hub_output_events.envelope import Envelope
from hub_output_events.lane import DeliveryFailed
from hub_output_events.signing import HEADER, sign

# What a destination's answer means: these are worth trying again; any other non-2xx is a refusal.
TRANSIENT_STATUSES = frozenset({408, 425, 429})
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = f"hub-output-events/{__version__}"


def check_url(url: str, policy: AddressPolicy | None = None) -> str | None:
    """Why `url` cannot be a webhook destination, or None. Only http(s); no credentials in the
    URL (use `headers`); never one of the hub's own services (Redis, the database, the API…)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return f"{url!r}: only http:// and https:// URLs"
    if not parts.hostname:
        return f"{url!r} has no host"
    if parts.username or parts.password:
        return "credentials in the URL would be logged; put an Authorization header in `headers`"
    port = port or (443 if parts.scheme == "https" else 80)
    own = (policy or default_policy()).own_service(parts.hostname, port)
    if own is not None:
        return f"{parts.hostname}:{port} is the hub's own {own}, not a webhook receiver"
    return None


def redacted(url: str) -> str:
    """The URL without its query string (which may hold a token), for health and logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?…" if parts.query else "")


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: the backoff decides


class WebhookSender:
    """Called by the lane's thread only: the connection is not shared between threads."""

    def __init__(self, url: str, secret: str, timeout_s: float, headers: dict[str, str] | None = None,
                 ca_file: str | None = None) -> None:
        self.url = url
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._secret = secret
        self._timeout = timeout_s
        self._headers = dict(headers or {})
        self._context = ssl.create_default_context(cafile=ca_file) if self._https else None
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout,
                                                         context=self._context)
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def headers_for(self, envelope: Envelope, body: bytes) -> dict[str, str]:
        return {**self._headers, "Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
                HEADER: sign(self._secret, body), "X-Hub-Event-Id": envelope.id,
                "X-Hub-Event-Type": envelope.type, "X-Hub-Sequence": str(envelope.sequence)}

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, Any]:
        conn = self._connection()
        conn.request("POST", self._target, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read(MAX_RESPONSE_BYTES).decode("utf-8", "replace")
        if not resp.isclosed():  # a longer answer than we read: the connection cannot be reused
            self.close()
        return resp.status, text, resp.headers

    def __call__(self, envelope: Envelope) -> None:
        body = envelope.body()
        reused = self._conn is not None and self._conn.sock is not None
        try:
            try:
                status, text, headers = self._post(body, self.headers_for(envelope, body))
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not reused:
                    raise
                # the receiver closed the idle kept-alive connection: once more on a fresh one
                self.close()
                status, text, headers = self._post(body, self.headers_for(envelope, body))
        except (OSError, http.client.HTTPException) as exc:  # refused, timed out, reset, TLS, garbled
            self.close()
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
        if 200 <= status < 300:
            return
        summary = f"HTTP {status}" + (f": {text.strip()[:200]}" if text.strip() else "")
        if status >= 500 or status in TRANSIENT_STATUSES:
            raise DeliveryFailed(summary, retry_after_s=_retry_after(headers.get("Retry-After")))
        raise DeliveryFailed(summary, transient=False)
