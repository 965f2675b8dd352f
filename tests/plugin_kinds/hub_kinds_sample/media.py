"""A media store in memory, with signed URLs a device could fetch from the hub."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from marshmallow import RAISE, Schema, fields

from hub.hookspecs import hookimpl
from hub.media import (MediaError, MediaInfo, MediaManifest, MediaNotFound, MediaObject, MediaStore, SignedUrl,
                       check_key, sign)


class ConfigSchema(Schema):
    class Meta:
        unknown = RAISE

    base_url = fields.Str(load_default="http://127.0.0.1:8080/media")
    secret = fields.Str(required=True, load_only=True)


class MemoryStore(MediaStore):
    manifest = MediaManifest(name="sample_memory", title="Media in memory", version="0.1.0",
                             config_schema=ConfigSchema, max_bytes=1_000_000)

    def __init__(self, config=None):
        super().__init__(config)
        self.objects: dict[str, MediaObject] = {}

    def put(self, key: str, data: bytes, media_type: str) -> MediaInfo:
        check_key(key)
        if len(data) > self.manifest.max_bytes:
            raise MediaError(f"{key}: {len(data)} bytes is more than {self.manifest.max_bytes}")
        info = MediaInfo.of(key, media_type, data)
        self.objects[key] = MediaObject(info, data)
        return info

    def get(self, key: str) -> MediaObject:
        try:
            return self.objects[check_key(key)]
        except KeyError:
            raise MediaNotFound(f"no media {key}") from None

    def signed_url(self, key: str, expires_in: timedelta) -> SignedUrl:
        self.get(key)
        expires_at = datetime.now(timezone.utc) + expires_in
        signature = sign(self.config["secret"].encode(), key, expires_at)
        return SignedUrl(f"{self.config['base_url']}/{key}?expires={int(expires_at.timestamp())}&sig={signature}",
                         expires_at)

    def delete(self, key: str) -> None:
        self.objects.pop(check_key(key), None)


@hookimpl
def register_media_stores(register):
    register(MemoryStore)
