"""Uploaded audio: checked by its content, transcoded for devices, recorded, and fetched by
signed, expiring URLs with range requests — without signing in, but never with an altered or
expired URL."""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
import types
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from hub.access import permissions
from hub.access.actors import Actor, Unauthenticated
from hub.access.secret_key import media_url_key
from hub.api import create_app
from hub.delivery.jobs import envelope_for
from hub.media import sign
from hub.runtime import Runtime
from hub.store.content_tables import MediaRecord
from hub.store.models import Content
from tests.support.api import assert_error
from tests.support.media import make_audio

EDITOR = Actor(name="editor-1", roles=frozenset({"editor"}))
VIEWER = Actor(name="viewer-1", roles=frozenset({"viewer"}))


def _anonymous(_req: object) -> Actor:
    raise Unauthenticated("sign in first")


@pytest.fixture
def media_rt(rt: Runtime, tmp_path: Path) -> Runtime:
    rt.settings.media_dir = str(tmp_path / "media")
    rt.settings.public_base_url = "http://127.0.0.1:8080"
    return rt


def client_for(rt: Runtime, who: Actor | None) -> FlaskClient:
    return create_app(rt, authenticator=(lambda _req: who) if who else _anonymous).test_client()


def upload(client: FlaskClient, data: bytes, name: str = "ban-tin.wav", **form: str) -> Any:
    return client.post("/api/media", data={"file": (io.BytesIO(data), name), **form},
                       content_type="multipart/form-data")


@pytest.fixture
def uploaded(media_rt: Runtime) -> dict[str, Any]:
    resp = upload(client_for(media_rt, EDITOR), make_audio(2.0))
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def fetch_path(rt: Runtime, key: str, ttl: timedelta = timedelta(minutes=10)) -> str:
    """The path and query of a URL the store signs, as a device would request it."""
    parts = urlsplit(rt.media_store().signed_url(key, ttl).url)
    return f"{parts.path}?{parts.query}"


def test_uploaded_audio_is_stored_as_device_mp3_with_its_sha256_and_duration(media_rt: Runtime,
                                                                            uploaded: dict[str, Any]) -> None:
    stored = media_rt.media_store().get(uploaded["key"])
    assert uploaded["sha256"] == hashlib.sha256(stored.data).hexdigest() == stored.info.sha256
    assert uploaded["media_type"] == "audio/mpeg" and uploaded["size"] == len(stored.data)
    assert abs(uploaded["duration_s"] - 2.0) < 0.15
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-"],
                                      input=stored.data, capture_output=True, check=True).stdout)
    (stream,) = probe["streams"]
    assert (stream["codec_name"], stream["channels"], stream["sample_rate"]) == ("mp3", 1, "44100")
    with media_rt.db.session() as s:
        row = s.get(MediaRecord, uploaded["key"])
        assert (row.sha256, row.size, row.original_name, row.created_by) == (
            uploaded["sha256"], uploaded["size"], "ban-tin.wav", "editor-1")
        assert abs(row.duration_s - 2.0) < 0.15


def test_audio_is_judged_by_content_not_by_name(media_rt: Runtime) -> None:
    editor = client_for(media_rt, EDITOR)
    text = "Thông báo: đây là văn bản, không phải âm thanh.\n".encode() * 50
    body = assert_error(upload(editor, text, "ban-tin.mp3"), 415, "files", "file", contains="not an audio file")
    assert "no audio stream" in body["message"] or "cannot read" in body["message"]
    ogg_named_oddly = upload(editor, make_audio(1.0, fmt="ogg"), "recording")  # no extension at all
    assert ogg_named_oddly.status_code == 201 and ogg_named_oddly.get_json()["media_type"] == "audio/mpeg"


def test_empty_too_large_and_missing_files_are_refused_naming_why(media_rt: Runtime) -> None:
    editor = client_for(media_rt, EDITOR)
    assert_error(upload(editor, b""), 422, "files", "file", contains="empty")
    audio = make_audio(1.0)
    media_rt.settings.media_max_upload_bytes = len(audio) - 1
    assert_error(upload(editor, audio), 413, "files", "file", contains="media_max_upload_bytes")
    far_too_large = upload(editor, audio * 2)  # beyond the body limit itself: werkzeug stops reading
    assert_error(far_too_large, 413)
    assert_error(editor.post("/api/media", data={"other": "x"}, content_type="multipart/form-data"), 400,
                 "files", "file")
    assert_error(editor.post("/api/media", json={"file": "x"}), 415, contains="multipart/form-data")


def test_only_content_writers_upload(media_rt: Runtime) -> None:
    assert_error(upload(client_for(media_rt, VIEWER), make_audio(0.5)), 403, contains="editor")
    assert_error(upload(client_for(media_rt, None), make_audio(0.5)), 401)
    assert permissions.allowed_roles("media.MediaUpload", "POST") == permissions.CONTENT_WRITERS
    assert permissions.is_public("media.MediaFile", "GET")


def test_upload_can_make_the_audio_file_content_that_plays_it(media_rt: Runtime) -> None:
    editor = client_for(media_rt, EDITOR)
    assert_error(upload(editor, make_audio(0.5), create_content="true"), 422, "form", "title")
    resp = upload(editor, make_audio(0.5, frequency=660), create_content="true", title="Bản tin sáng",
                  priority="priority")
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    with media_rt.db.session() as s:
        content = s.get(Content, body["content_id"])
        assert (content.kind, content.title, content.priority, content.created_by) == (
            "audio_file", "Bản tin sáng", "priority", "editor-1")
        assert content.media["key"] == body["key"] and content.media["sha256"] == body["sha256"]


def test_signed_url_serves_ranges_without_sign_in(media_rt: Runtime, uploaded: dict[str, Any]) -> None:
    device = client_for(media_rt, None)  # devices cannot sign in
    data = media_rt.media_store().get(uploaded["key"]).data
    path = fetch_path(media_rt, uploaded["key"])
    first = device.get(path, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206 and first.data == data[:100]
    assert first.headers["Content-Range"] == f"bytes 0-99/{len(data)}"
    assert first.headers["Accept-Ranges"] == "bytes" and first.headers["Content-Type"] == "audio/mpeg"
    rest = device.get(path, headers={"Range": "bytes=100-"})
    assert rest.status_code == 206 and first.data + rest.data == data
    whole = device.get(path)
    assert whole.status_code == 200 and whole.data == data
    assert whole.headers["ETag"].strip('"') == uploaded["sha256"]
    assert device.get(path, headers={"If-None-Match": f'"{uploaded["sha256"]}"'}).status_code == 304


def test_expired_or_altered_urls_are_refused_and_unknown_keys_are_404(media_rt: Runtime,
                                                                      uploaded: dict[str, Any]) -> None:
    device = client_for(media_rt, None)
    key = uploaded["key"]
    secret = media_url_key(media_rt.settings)
    past = datetime.now(timezone.utc) - timedelta(seconds=5)
    expired = f"/media/{key}?expires={int(past.timestamp())}&sig={sign(secret, key, past)}"
    assert_error(device.get(expired, headers={"Range": "bytes=0-9"}), 403, contains="expired")

    good = fetch_path(media_rt, key)
    q = {k: v[0] for k, v in parse_qs(urlsplit(good).query).items()}
    flipped = q["sig"][:-1] + ("0" if q["sig"][-1] != "0" else "1")
    assert_error(device.get(f"/media/{key}?expires={q['expires']}&sig={flipped}"), 403, contains="signature")
    later = int(q["expires"]) + 3600  # a longer life than was signed
    assert_error(device.get(f"/media/{key}?expires={later}&sig={q['sig']}"), 403, contains="signature")
    other = upload(client_for(media_rt, EDITOR), make_audio(0.5, frequency=880)).get_json()["key"]
    assert_error(device.get(f"/media/{other}?expires={q['expires']}&sig={q['sig']}"), 403, contains="signature")
    assert_error(device.get(f"/media/{key}"), 403, contains="signed URL")

    future = datetime.now(timezone.utc) + timedelta(minutes=5)
    missing = "audio/00/nothing.mp3"
    assert_error(device.get(f"/media/{missing}?expires={int(future.timestamp())}&sig={sign(secret, missing, future)}"),
                 404, contains="no media")


def test_a_command_sends_a_fresh_signed_url_that_outlives_it(media_rt: Runtime, uploaded: dict[str, Any]) -> None:
    expires_at = datetime.now(timezone.utc) + timedelta(minutes=30)
    content = types.SimpleNamespace(id="c1", kind="audio_file", title="t", body=None, language="vi",
                                    media={"key": uploaded["key"], "sha256": uploaded["sha256"], "duration_s": 2.0})
    cmd = types.SimpleNamespace(id="cmd1", verb="play", params={}, priority="normal", expires_at=expires_at,
                                content=content)
    env = envelope_for(cmd, media_rt)  # type: ignore[arg-type]
    url = urlsplit(env.content["media_uri"])
    assert url.netloc == "127.0.0.1:8080" and url.path == f"/media/{uploaded['key']}"
    expires = int(parse_qs(url.query)["expires"][0])
    assert expires >= int((expires_at + timedelta(seconds=media_rt.settings.media_url_ttl_s)).timestamp())
    assert client_for(media_rt, None).get(f"{url.path}?{url.query}").status_code == 200
    content.media = {"uri": "http://cdn.example.vn/a.mp3"}  # media given as a plain URI goes out as it is
    assert envelope_for(cmd, media_rt).content["media_uri"] == "http://cdn.example.vn/a.mp3"  # type: ignore[arg-type]
