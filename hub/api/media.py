"""Media: audio uploaded into the hub's media store, and the signed URLs devices fetch it by.

`POST /api/media` takes a multipart upload from an editor (hub.content.media checks it by its
content, transcodes and records it). `GET /media/<key>?expires=…&sig=…` is served without
credentials — devices cannot sign in — to whoever holds a URL the hub signed (hub.media.sign with
the key from hub.access.secret_key.media_url_key), until it expires; it answers range requests, as
a player that streams or resumes asks for part of a file.
"""
from __future__ import annotations

import io
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import flask
from flask.views import MethodView

from hub.access.permissions import CONTENT_WRITERS, PUBLIC
from hub.access.secret_key import media_url_key
from hub.api.common import HubBlueprint, actor, audit, runtime
from hub.api.errors import field_error, json_error
from hub.content import editing
from hub.content.media import StoredMedia, UploadError, store_upload
from hub.hookspecs import hookimpl
from hub.media import MediaError, MediaNotFound, check_key, signature_ok
from hub.schemas.content import ContentSchema

log = logging.getLogger("hub.api")

blp = HubBlueprint("media", __name__, description="Audio in the hub's media store: upload it (multipart), and "
                                                    "fetch it by a signed, expiring URL (no sign-in).")

RULES = {"MediaUpload": {"POST": CONTENT_WRITERS},
         "MediaFile": {"GET": PUBLIC}}

MULTIPART_OVERHEAD = 64 * 1024  # the form's boundaries and other fields, beside the file itself
CONTENT_FIELDS = ("title", "language", "priority", "category", "area_code")


@blp.route("/api/media")
class MediaUpload(MethodView):
    # hub.api refuses bodies that are not JSON, except for views that say they take files
    takes_files = True

    @blp.response(201)
    @blp.fails(400, 413, 415, 422)
    def post(self) -> Any:
        """Upload audio

        Tải lên âm thanh. A multipart form: `file` (any audio ffmpeg reads; the type is judged by
        the content, not the name), and optionally `create_content=true` with `title` (and
        `area_code`, `language`, `priority`, `category`) to make a draft audio_file content of
        that area that plays it (area_code is required unless the account is for every area). Answers
        the media `key`, its `sha256` and `duration_s` (of the MP3 devices will fetch).
        """
        req = flask.request
        upload = req.files.get("file")
        if upload is None:
            return field_error(400, "send the audio as the multipart form field `file`", "file", "files")
        data = upload.read()
        want_content = (req.form.get("create_content") or "").strip().lower() in ("1", "true", "yes", "on")
        content_fields: dict[str, Any] = {}
        if want_content:
            raw = {k: req.form[k] for k in CONTENT_FIELDS if req.form.get(k)}
            raw.update(kind="audio_file", media={"key": "audio/placeholder.mp3"})
            problems = ContentSchema().validate(raw)
            if problems:
                first = next(iter(problems))
                return field_error(422, f"{first}: {'; '.join(map(str, problems[first]))}", first, "form")
            content_fields = raw
        rt = runtime()
        try:
            with rt.db.session() as s:
                if want_content:  # refused before anything is stored: the content's area is the caller's
                    editing.check_area_code(s, actor(), content_fields.get("area_code"), "create")
                stored = store_upload(rt, s, data, upload.filename, actor().name)
                body = _answer(stored)
                audit(s, "media.upload", "media", stored.key, {"sha256": stored.sha256, "size": stored.size,
                                                               "original_name": stored.original_name})
                if want_content:
                    content_fields["media"] = stored.as_content_media()
                    content = editing.create(s, actor(), ContentSchema().load(content_fields),
                                             note=f"uploaded as {stored.original_name or stored.key}")
                    body["content_id"], body["content_status"] = content.id, content.status
        except UploadError as exc:
            return field_error(exc.status, exc.message, "file", "files")
        except MediaError as exc:
            log.error("media store failed storing an upload: %s", exc)
            return json_error(503, f"the media store could not take the file: {exc}")
        return body, 201


def _answer(stored: StoredMedia) -> dict[str, Any]:
    return {"key": stored.key, "media_type": stored.media_type, "size": stored.size, "sha256": stored.sha256,
            "duration_s": stored.duration_s, "original_name": stored.original_name,
            "already_stored": stored.already_stored}


@blp.route("/media/<path:key>")
class MediaFile(MethodView):
    @blp.response(200)
    @blp.fails(403, 404)
    def get(self, key: str) -> Any:
        """Fetch media by a signed URL

        What devices fetch: no sign-in, but the URL must carry the `expires` and `sig` the hub
        signed for this key, and not be expired (403 otherwise). Range requests are answered
        with 206 Partial Content; the ETag is the object's sha256.
        """
        refusal = _refusal(key)
        if refusal is not None:
            return json_error(403, refusal)
        store = runtime().media_store()
        try:
            return _send(store, key)
        except MediaNotFound:
            return json_error(404, f"no media {key} in the store")
        except MediaError as exc:
            log.error("media store failed serving %s: %s", key, exc)
            return json_error(503, "the media store is unavailable; try again")


def _refusal(key: str) -> str | None:
    """Why this request's URL does not open `key`, or None when it does."""
    args = flask.request.args
    raw_expires, sig = args.get("expires", ""), args.get("sig", "")
    if not raw_expires or not sig:
        return "media is fetched by a signed URL: expires and sig are missing"
    try:
        expires = int(raw_expires)
        check_key(key)
    except (ValueError, MediaError):
        return "this media URL is malformed"
    now = datetime.now(timezone.utc)
    if now.timestamp() >= expires:
        return f"this media URL expired at {datetime.fromtimestamp(expires, timezone.utc).isoformat()}"
    if not signature_ok(media_url_key(runtime().settings), key, expires, sig, now):
        return "this media URL's signature does not match (altered, or signed by another hub)"
    return None


def _send(store: Any, key: str) -> flask.Response:
    """The object, with werkzeug doing Range, If-None-Match and HEAD. A store that can name the
    file (the directory store) is streamed from disk rather than read into memory."""
    path_of, info_of = getattr(store, "path", None), getattr(store, "info", None)
    if callable(path_of) and callable(info_of):
        info = info_of(key)
        resp = flask.send_file(path_of(key), mimetype=info.media_type, conditional=True, etag=info.sha256,
                               max_age=None)
    else:
        obj = store.get(key)
        info = obj.info
        resp = flask.send_file(io.BytesIO(obj.data), mimetype=info.media_type, conditional=True,
                               etag=info.sha256, last_modified=None, max_age=None)
    resp.headers["Cache-Control"] = "private, no-transform"  # the URL expires; shared caches must not outlive it
    return resp


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
