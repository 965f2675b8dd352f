"""Webhook signatures: how the hub signs a request and how a receiver checks it.

This module imports only the standard library, so a receiver (the IOC's integration service)
can copy it whole and call `verify()`.

The header, one per request:

    X-Hub-Signature: t=1733460000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

- `t`: the Unix time (seconds, UTC) at which this attempt was signed; every retry signs again
  with a new `t`, so a retry is not mistaken for a replay;
- `v1`: lower-case hex HMAC-SHA256, keyed with the destination's shared secret (its UTF-8
  bytes), over the bytes `f"{t}."` followed by the raw request body, exactly as received.
  More `v1=` entries may follow while a secret is being changed; one valid entry is enough.

A receiver:
1. reads the raw body before parsing it (re-serialised JSON would not match);
2. calls `verify(secret, request.headers["X-Hub-Signature"], raw_body)`: it raises
   SignatureError when the header is malformed, the signature does not match (compared in
   constant time, `hmac.compare_digest`), or `t` lies more than `tolerance_s` (default 300 s)
   from the receiver's clock, which bounds how long a captured request can be replayed;
3. drops a body whose `id` it has already processed: delivery is at least once (a retry after a
   lost response repeats it), and within the tolerance a replay is indistinguishable from it.
"""
from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Hub-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """The request's signature header is missing, malformed, wrong or too old."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"{timestamp}." + body` under `secret`."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The value of the X-Hub-Signature header for `body` signed now (or at `timestamp`)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},{SCHEME}={signature(secret, t, body)}"


def verify(secret: str, header: str | None, body: bytes, tolerance_s: float = DEFAULT_TOLERANCE_S,
           now: float | None = None) -> int:
    """Check a request's X-Hub-Signature header against its raw body; return its timestamp.
    Raises SignatureError saying what is wrong."""
    if not header:
        raise SignatureError(f"no {HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError(f"malformed {HEADER} header: {part.strip()!r} is not key=value")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError(f"malformed {HEADER} header: t={value!r} is not a Unix time") from None
        elif key == SCHEME:
            candidates.append(value)
    if timestamp is None:
        raise SignatureError(f"{HEADER} header has no t=")
    if not candidates:
        raise SignatureError(f"{HEADER} header has no {SCHEME}= signature")
    expected = signature(secret, timestamp, body)
    # compare_digest on every candidate, no early exit: the time taken says nothing about the secret
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate.strip().lower())
    if not matched:
        raise SignatureError("signature does not match the body (tampered, or another secret)")
    age = (time.time() if now is None else now) - timestamp
    if abs(age) > tolerance_s:
        raise SignatureError(f"timestamp is {age:+.0f}s from now, outside the {tolerance_s:g}s tolerance "
                             "(a replayed or delayed request, or a clock out of step)")
    return timestamp
