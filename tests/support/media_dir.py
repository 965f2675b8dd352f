"""A media store in a directory, for tests of what writes media (speech rendering): the hub's own
directory store is another plugin; this one only keeps the contract, with a call count so a test
can tell a cache hit from a new render."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from hub.media import (MediaInfo, MediaManifest, MediaNotFound, MediaObject, MediaStore, SignedUrl, check_key,
                       sign)


class DirectoryStore(MediaStore):
    manifest = MediaManifest(name="test_directory", title="Media in a test's directory", version="0.1.0")

    def __init__(self, root: Path) -> None:
        super().__init__({})
        self.root = Path(root)
        self.puts: list[str] = []
        self._types: dict[str, str] = {}

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, media_type: str) -> MediaInfo:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self._types[key] = media_type
        self.puts.append(key)
        return MediaInfo.of(key, media_type, data)

    def get(self, key: str) -> MediaObject:
        path = self._path(key)
        if not path.is_file():
            raise MediaNotFound(f"no media {key}")
        data = path.read_bytes()
        return MediaObject(MediaInfo.of(key, self._types.get(key, "application/octet-stream"), data), data)

    def signed_url(self, key: str, expires_in: timedelta) -> SignedUrl:
        self.get(key)
        expires_at = datetime.now(timezone.utc) + expires_in
        return SignedUrl(f"http://127.0.0.1:9/media/{key}?expires={int(expires_at.timestamp())}"
                         f"&sig={sign(b'test', key, expires_at)}", expires_at)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
