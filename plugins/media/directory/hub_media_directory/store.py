"""A media store on a directory: objects are files named by their key, written atomically.

Beside each object, under `.meta/` (a name no key can take, since a key part never starts with
a dot), a small JSON file keeps its media type and sha256, so get() answers without guessing a
type from the file name. URLs are signed with hub.media.sign under the key the hub hands over
(`url_secret`, derived from its secret key; see hub.access.secret_key.media_url_key) and served
by the hub's own `GET /media/<key>`.
"""
from __future__ import annotations

import json
import os
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from hub.contract import Health
from hub.media import (MediaError, MediaInfo, MediaManifest, MediaNotFound, MediaObject, MediaStore, SignedUrl,
                       check_key, sign)

from hub_media_directory import __version__

META_DIR = ".meta"


class DirectoryConfig(Schema):
    directory = fields.Str(load_default="var/media", validate=validate.Length(min=1),
                           metadata={"description": "Where the objects live (the hub passes media_dir)"})
    public_base_url = fields.Str(required=True, validate=validate.Regexp(r"^https?://[^/?#]+(/[^?#]*)?$",
                                                                         error="must be http(s)://host[:port][/path]"),
                                 metadata={"description": "The hub as devices reach it (the hub passes "
                                                          "public_base_url)"})
    url_secret = fields.Str(required=True, metadata={"description": "Hex key signing URLs (the hub derives it)"})
    max_bytes = fields.Int(load_default=None, allow_none=True, validate=validate.Range(min=1))

    @validates("url_secret")
    def _long_enough(self, value: str, **_: Any) -> None:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise ValidationError("must be hex digits") from None
        if len(raw) < 16:  # a short key would let a URL's signature be guessed
            raise ValidationError("must be at least 16 bytes (32 hex digits)")


class DirectoryStore(MediaStore):
    manifest = MediaManifest(name="directory", title="Media in a directory on the hub's disk", version=__version__,
                             config_schema=DirectoryConfig)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.root = Path(self.config.get("directory") or "var/media")
        self.base_url = str(self.config.get("public_base_url") or "").rstrip("/")
        self._secret = bytes.fromhex(str(self.config.get("url_secret") or ""))
        self.max_bytes: int | None = self.config.get("max_bytes")

    # -- paths -------------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _meta_path(self, key: str) -> Path:
        return self.root / META_DIR / f"{check_key(key)}.json"

    # -- the contract ------------------------------------------------------------------------
    def put(self, key: str, data: bytes, media_type: str) -> MediaInfo:
        """Write `data` under `key`: to a temporary file first, then renamed over the old one, so a
        device fetching meanwhile gets the old object or the new one, never half of either."""
        if not isinstance(data, (bytes, bytearray)):
            raise MediaError(f"media {key}: data must be bytes")
        if self.max_bytes is not None and len(data) > self.max_bytes:
            raise MediaError(f"media {key}: {len(data)} bytes is more than this store's limit of {self.max_bytes}")
        info = MediaInfo.of(check_key(key), media_type, bytes(data))
        try:
            _atomic_write(self._path(key), bytes(data))
            meta = {"media_type": info.media_type, "size": info.size, "sha256": info.sha256}
            _atomic_write(self._meta_path(key), json.dumps(meta).encode())
        except OSError as exc:
            raise MediaError(f"media {key}: cannot write under {self.root}: {exc}", transient=True) from exc
        return info

    def get(self, key: str) -> MediaObject:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MediaNotFound(f"media {key}: not in the store") from None
        except IsADirectoryError:
            raise MediaNotFound(f"media {key}: not in the store") from None
        except OSError as exc:
            raise MediaError(f"media {key}: cannot read {path}: {exc}", transient=True) from exc
        return MediaObject(MediaInfo.of(key, self._media_type(key), data), data)

    def info(self, key: str) -> MediaInfo:
        """What is stored under `key`, without reading the object (from its .meta file)."""
        path = self._path(key)
        if not path.is_file():
            raise MediaNotFound(f"media {key}: not in the store")
        try:
            meta = json.loads(self._meta_path(key).read_text())
            return MediaInfo(key, meta["media_type"], path.stat().st_size, meta["sha256"])
        except (OSError, ValueError, KeyError):  # no readable meta: work it out from the bytes
            return self.get(key).info

    def path(self, key: str) -> Path:
        """The file holding `key`, for a server that streams it from disk."""
        path = self._path(key)
        if not path.is_file():
            raise MediaNotFound(f"media {key}: not in the store")
        return path

    def signed_url(self, key: str, expires_in: timedelta) -> SignedUrl:
        if not self._path(key).is_file():
            raise MediaNotFound(f"media {key}: not in the store")
        if expires_in.total_seconds() <= 0:
            raise MediaError(f"media {key}: a signed URL must expire in the future")
        # whole seconds: the signature covers the integer the URL carries
        expires_at = datetime.fromtimestamp(int((datetime.now(timezone.utc) + expires_in).timestamp()) + 1,
                                            timezone.utc)
        signature = sign(self._secret, key, expires_at)
        url = f"{self.base_url}/media/{key}?expires={int(expires_at.timestamp())}&sig={signature}"
        return SignedUrl(url, expires_at)

    def delete(self, key: str) -> None:
        for path in (self._path(key), self._meta_path(key)):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise MediaError(f"media {key}: cannot delete {path}: {exc}", transient=True) from exc

    def health(self) -> Health:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".health-{secrets.token_hex(4)}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            return Health(False, f"cannot write {self.root}: {exc}")
        return Health(True, str(self.root))

    def _media_type(self, key: str) -> str:
        try:
            return str(json.loads(self._meta_path(key).read_text())["media_type"])
        except (OSError, ValueError, KeyError):
            return "application/octet-stream"


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
