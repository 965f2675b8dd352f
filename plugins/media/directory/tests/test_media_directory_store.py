"""The directory media store keeps the media-store contract: what is put comes back with its
sha256, signed URLs verify with hub.media.signature_ok until they expire, bad keys and bad
configuration are refused naming what is wrong."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from hub.media import MediaError, MediaNotFound, signature_ok
from hub.plugins import Plugins

from hub_media_directory.store import DirectoryStore

SECRET = bytes.fromhex("5e" * 32)


def test_put_then_get_returns_the_bytes_type_and_sha256(store: DirectoryStore) -> None:
    data = b"ID3" + bytes(range(256)) * 40
    info = store.put("audio/ab/clip.mp3", data, "audio/mpeg")
    assert info.sha256 == hashlib.sha256(data).hexdigest() and info.size == len(data)
    got = store.get("audio/ab/clip.mp3")
    assert got.data == data and got.info == info
    assert store.info("audio/ab/clip.mp3") == info


def test_put_replaces_atomically_and_leaves_no_temporary_files(store: DirectoryStore) -> None:
    store.put("a.mp3", b"old", "audio/mpeg")
    store.put("a.mp3", b"new bytes", "audio/mpeg")
    assert store.get("a.mp3").data == b"new bytes"
    leftovers = [p.name for p in Path(store.root).rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_get_and_sign_of_a_missing_key_say_it_is_not_there(store: DirectoryStore) -> None:
    with pytest.raises(MediaNotFound, match="not in the store"):
        store.get("nothing.mp3")
    with pytest.raises(MediaNotFound):
        store.signed_url("nothing.mp3", timedelta(minutes=5))
    store.delete("nothing.mp3")  # deleting what is not there is no error


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs.mp3", "a/../b.mp3", ".meta/a.mp3.json", "a b.mp3", ""])
def test_keys_that_could_escape_the_directory_are_refused(store: DirectoryStore, key: str) -> None:
    with pytest.raises(MediaError, match="media key"):
        store.put(key, b"x", "audio/mpeg")


def test_signed_url_verifies_until_it_expires_and_not_for_another_key(store: DirectoryStore) -> None:
    store.put("audio/x.mp3", b"abc", "audio/mpeg")
    signed = store.signed_url("audio/x.mp3", timedelta(minutes=10))
    parts = urlsplit(signed.url)
    assert f"{parts.scheme}://{parts.netloc}" == "http://127.0.0.1:8080" and parts.path == "/media/audio/x.mp3"
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    expires = int(q["expires"])
    assert expires == int(signed.expires_at.timestamp())
    now = datetime.now(timezone.utc)
    assert signature_ok(SECRET, "audio/x.mp3", expires, q["sig"], now)
    assert not signature_ok(SECRET, "audio/y.mp3", expires, q["sig"], now)  # another key
    assert not signature_ok(SECRET, "audio/x.mp3", expires + 60, q["sig"], now)  # a longer life
    assert not signature_ok(SECRET, "audio/x.mp3", expires, q["sig"], now + timedelta(minutes=11))  # expired


def test_the_store_limit_refuses_a_larger_object(tmp_path: Path) -> None:
    small = DirectoryStore.configured({"directory": str(tmp_path), "public_base_url": "http://h",
                                       "url_secret": "5e" * 32, "max_bytes": 4})
    with pytest.raises(MediaError, match="limit of 4"):
        small.put("a.mp3", b"12345", "audio/mpeg")


@pytest.mark.parametrize("config, message", [
    ({"public_base_url": "http://h", "url_secret": "5e" * 8}, "url_secret"),
    ({"public_base_url": "ftp://h", "url_secret": "5e" * 32}, "public_base_url"),
    ({"url_secret": "5e" * 32}, "public_base_url"),
])
def test_bad_configuration_names_the_setting(config: dict[str, str], message: str) -> None:
    with pytest.raises(MediaError, match=f"media directory: configuration: {message}"):
        DirectoryStore.configured(config)


def test_health_says_whether_the_directory_can_be_written(store: DirectoryStore, tmp_path: Path) -> None:
    assert store.health().ok
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    broken = DirectoryStore.configured({"directory": str(blocker / "media"), "public_base_url": "http://h",
                                        "url_secret": "5e" * 32})
    assert not broken.health().ok


def test_the_hub_finds_it_through_its_entry_point() -> None:
    plugins = Plugins()
    plugins.load_entry_points(only={"directory"})
    assert plugins.media_store("directory") is DirectoryStore
    assert not [p for p in plugins.problems if "directory" in p]
