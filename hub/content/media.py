"""Uploaded audio: checked by what it contains, transcoded for devices, stored, recorded.

The type is judged by ffprobe reading the bytes, never by the file name or the Content-Type a
browser guessed: a text file renamed .mp3 is refused, a WAV named "ban-tin" is accepted. Whatever
comes in is transcoded to one format every IP speaker decodes (see DEVICE_* below), so a device
never meets a codec it lacks, and what the hub stores is exactly what it can vouch for: the
sha256 and duration recorded are those of the transcoded file devices fetch.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from hub.media import MediaError
from hub.runtime import Runtime
from hub.store.content_tables import MediaRecord
from hub.store.db import utcnow

# What devices get. MP3: the one codec every IP speaker cluster and streaming chip on the market
# decodes. MPEG-1 Layer III at 44.1 kHz rather than a lower MPEG-2 rate: cheap decoders that play
# 44.1 kHz MP3 do not all play 22.05 kHz. Mono: a loudspeaker cluster plays one channel, so stereo
# would double the bytes a 3G/4G link must carry for nothing. 64 kbit/s constant bitrate: speech
# stays clear at it (bulletins are speech), an hour is ~29 MB, and with a constant bitrate a byte
# offset maps linearly to a time, so a player resuming with a Range request lands where it meant to.
DEVICE_MEDIA_TYPE = "audio/mpeg"
DEVICE_SAMPLE_RATE = 44100
DEVICE_CHANNELS = 1
DEVICE_BITRATE = "64k"
TOOL_TIMEOUT_S = 300  # an hour of audio transcodes in well under a minute; a hung ffmpeg must not hold a worker


class UploadError(ValueError):
    """Uploaded media refused; `status` is the HTTP answer (413 too large, 415 not audio, 422 …)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class StoredMedia:
    key: str
    media_type: str
    size: int
    sha256: str
    duration_s: float | None
    original_name: str | None
    already_stored: bool = False  # the same audio was uploaded before; its record is returned

    def as_content_media(self) -> dict[str, Any]:
        """The `media` of a content that plays it: devices get a fresh signed URL for the key."""
        return {"key": self.key, "sha256": self.sha256, "duration_s": self.duration_s, "mime": self.media_type}


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's view of a file (format and streams); UploadError(415) when it cannot read it."""
    try:
        done = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                               str(path)], capture_output=True, timeout=TOOL_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise MediaError("ffprobe is not installed (Debian package ffmpeg; scripts/services.sh installs it)") from None
    except subprocess.TimeoutExpired:
        raise UploadError(f"ffprobe gave up on the file after {TOOL_TIMEOUT_S} s", status=415) from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UploadError(f"not an audio file: ffprobe cannot read it ({why[-1] if why else 'unknown format'})",
                          status=415)
    try:
        return json.loads(done.stdout or b"{}")
    except ValueError:
        raise UploadError("not an audio file: ffprobe's answer about it was unreadable", status=415) from None


def audio_problem(info: dict[str, Any]) -> str | None:
    """Why what ffprobe saw is not audio a device can play, or None."""
    streams = info.get("streams") or []
    fmt = (info.get("format") or {}).get("format_name") or "unknown"
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not audio:
        kinds = ", ".join(sorted({f"{s.get('codec_type')} ({s.get('codec_name')})" for s in streams})) or "none"
        return f"not an audio file: ffprobe reads it as format {fmt} with no audio stream (streams: {kinds})"
    duration = _duration(info)
    if duration is not None and duration <= 0:
        return "the audio is empty: its duration is 0 s"
    return None


def _duration(info: dict[str, Any]) -> float | None:
    for where in [info.get("format") or {}] + list(info.get("streams") or []):
        try:
            value = float(where.get("duration"))
        except (TypeError, ValueError):
            continue
        return round(value, 3)
    return None


def transcode(source: Path, target: Path) -> None:
    """Write `source`'s first audio stream to `target` as the devices' MP3 (video, cover art and
    tags dropped: a tag can hold anything, and devices play sound)."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-map", "0:a:0", "-vn", "-sn", "-dn",
           "-map_metadata", "-1", "-ac", str(DEVICE_CHANNELS), "-ar", str(DEVICE_SAMPLE_RATE),
           "-c:a", "libmp3lame", "-b:a", DEVICE_BITRATE, "-f", "mp3", str(target)]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=TOOL_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise MediaError("ffmpeg is not installed (Debian package ffmpeg; scripts/services.sh installs it)") from None
    except subprocess.TimeoutExpired:
        raise UploadError(f"transcoding took longer than {TOOL_TIMEOUT_S} s; send a shorter file", status=422) \
            from None
    if done.returncode != 0 or not target.exists() or target.stat().st_size == 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UploadError(f"the audio could not be decoded: {why[-1] if why else 'ffmpeg produced nothing'}",
                          status=422)


def media_key(sha256: str) -> str:
    """Keys follow the content: the same audio uploaded twice is stored once."""
    return f"audio/{sha256[:2]}/{sha256}.mp3"


def store_upload(rt: Runtime, session: Session, data: bytes, original_name: str | None,
                 created_by: str) -> StoredMedia:
    """Check, transcode, store and record uploaded audio (the record is added to `session`).

    Raises UploadError naming what is wrong: empty, too large (413), not audio (415), or audio
    that cannot be decoded (422); MediaError when the store itself fails."""
    limit = rt.settings.media_max_upload_bytes
    if not data:
        raise UploadError("the file is empty", status=422)
    if len(data) > limit:
        raise UploadError(f"the file is {len(data)} bytes; at most {limit} are accepted (media_max_upload_bytes)",
                          status=413)
    with tempfile.TemporaryDirectory(prefix="hub-upload-") as tmp:
        source, target = Path(tmp) / "upload", Path(tmp) / "device.mp3"
        source.write_bytes(data)
        problem = audio_problem(probe(source))
        if problem:
            raise UploadError(problem, status=415)
        transcode(source, target)
        out = target.read_bytes()
        duration = _duration(probe(target))
    digest = hashlib.sha256(out).hexdigest()
    key = media_key(digest)
    name = (original_name or "")[:255] or None
    known = session.get(MediaRecord, key)
    if known is not None and _still_stored(rt, key):
        return StoredMedia(known.key, known.media_type, known.size, known.sha256, known.duration_s,
                           known.original_name, already_stored=True)
    info = rt.media_store().put(key, out, DEVICE_MEDIA_TYPE)
    if known is None:
        session.add(MediaRecord(key=key, media_type=info.media_type, size=info.size, sha256=info.sha256,
                                duration_s=duration, original_name=name, created_by=created_by,
                                created_at=utcnow()))
    return StoredMedia(key, info.media_type, info.size, info.sha256, duration, name)


def _still_stored(rt: Runtime, key: str) -> bool:
    try:
        rt.media_store().get(key)
    except MediaError:
        return False  # recorded but gone from the store (restored database, wiped directory): store it again
    return True
