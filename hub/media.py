"""What a media store is: where bulletin audio and images live, and the URLs devices fetch them by.

Devices cannot log in, so they fetch by a **signed URL** that expires: anyone holding it may read
that one object until then, nobody can forge one for another. A store on the hub's own disk, an
S3-compatible bucket or a CDN are plugins of this kind. `sign` and `signature_ok` below are the
HMAC scheme a store that serves its own files may use.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from hub.contract import BaseManifest, ContractError, Health, ManifestError, Plugin, check_text, stub

# Keys are chosen by the hub ("content/2026/12/abc123.mp3"): relative, no "..", safe in a URL and a path.
KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")
MAX_KEY = 255


class MediaError(ContractError):
    """A bad key or object, or the store failed; the message says which. `transient=True`: try again."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class MediaNotFound(MediaError):
    """get() or signed_url() of a key the store does not hold."""


def check_key(key: object) -> str:
    if not isinstance(key, str) or len(key) > MAX_KEY or not KEY.fullmatch(key) or ".." in key.split("/"):
        raise MediaError(f"media key {key!r}: use letters, digits, '.', '_', '-' and '/' between parts "
                         f"(relative, no '..', at most {MAX_KEY})")
    return key


@dataclass(frozen=True, kw_only=True)
class MediaManifest(BaseManifest):
    kind: ClassVar[str] = "media"
    max_bytes: int | None = None  # the largest object put() accepts; None: no limit of its own

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_bytes is not None and (not isinstance(self.max_bytes, int) or self.max_bytes <= 0):
            raise ManifestError(f"media {self.name}: max_bytes must be a positive integer")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "kind": self.kind, "max_bytes": self.max_bytes}


@dataclass(frozen=True)
class MediaInfo:
    """What the store holds under a key."""

    key: str
    media_type: str  # "audio/mpeg"
    size: int  # bytes
    sha256: str  # hex digest, so a device or an audit can check what it got

    def __post_init__(self) -> None:
        check_key(self.key)
        check_text(self.media_type, f"media {self.key}: media_type", MediaError, required=True)
        if not isinstance(self.size, int) or self.size < 0:
            raise MediaError(f"media {self.key}: size must be a non-negative integer")
        if not isinstance(self.sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise MediaError(f"media {self.key}: sha256 must be 64 lower-case hex digits")

    @classmethod
    def of(cls, key: str, media_type: str, data: bytes) -> MediaInfo:
        return cls(key, media_type, len(data), hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class MediaObject:
    info: MediaInfo
    data: bytes


@dataclass(frozen=True)
class SignedUrl:
    url: str  # absolute; a device fetches it without credentials
    expires_at: datetime  # timezone-aware; after it the URL must be refused

    def __post_init__(self) -> None:
        check_text(self.url, "signed url", MediaError, required=True)
        if not isinstance(self.expires_at, datetime) or self.expires_at.utcoffset() is None:
            raise MediaError("signed url: expires_at must be a timezone-aware datetime")


def sign(secret: bytes, key: str, expires_at: datetime) -> str:
    """The signature of (key, expiry) under `secret`, for a URL's query string."""
    message = f"{check_key(key)}\n{int(expires_at.timestamp())}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def signature_ok(secret: bytes, key: str, expires: int, signature: str, now: datetime) -> bool:
    """Whether a URL's (key, expires, signature) was signed with `secret` and has not expired."""
    if now.timestamp() >= expires:
        return False
    message = f"{check_key(key)}\n{int(expires)}".encode()
    return hmac.compare_digest(hmac.new(secret, message, hashlib.sha256).hexdigest(), signature)


class MediaStore(Plugin):
    """Base class of every media store. Subclasses set `manifest` and implement put, get,
    signed_url and delete."""

    manifest: ClassVar[MediaManifest]
    manifest_type = MediaManifest
    error = MediaError
    required = ("put", "get", "signed_url", "delete")

    @stub
    def put(self, key: str, data: bytes, media_type: str) -> MediaInfo:
        """Store `data` under `key` (replacing what was there); raise MediaError if it is too large."""
        raise NotImplementedError

    @stub
    def get(self, key: str) -> MediaObject:
        """The object under `key`; raise MediaNotFound if there is none."""
        raise NotImplementedError

    @stub
    def signed_url(self, key: str, expires_in: timedelta) -> SignedUrl:
        """A URL a device can fetch `key` by, without credentials, until now + expires_in."""
        raise NotImplementedError

    @stub
    def delete(self, key: str) -> None:
        """Remove `key`; removing a missing key is not an error."""
        raise NotImplementedError

    def health(self) -> Health:
        """Whether the store can be written right now."""
        return Health(True)
