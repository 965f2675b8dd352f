"""Playing a text bulletin sends devices audio, never the raw text: a speaker that cannot speak
text would stay silent while its answer says `acked`."""
from __future__ import annotations

import uuid

from sqlalchemy import select

from hub.capabilities import CAPABILITIES, VOCABULARY_VERSION, required_capabilities
from hub.store.db import utcnow
from hub.store.models import Content, Delivery
from tests.support.dispatch import add, send, work


def _text_bulletin(rt, media: dict | None = None) -> str:
    with rt.db.session() as s:
        c = Content(id=uuid.uuid4().hex, title="Bão số 3", kind="tts_text", language="vi",
                    body="Thông báo khẩn: bão số 3 đang tiến vào đất liền.", media=media, created_by="t",
                    created_at=utcnow())
        s.add(c)
    return c.id


def _states(rt, command_id: str) -> dict[str, tuple[str, str | None]]:
    with rt.db.session() as s:
        return {d.device_id: (d.state, d.reason)
                for d in s.scalars(select(Delivery).where(Delivery.command_id == command_id))}


def test_a_text_bulletin_without_audio_is_unsupported_on_a_speaker_that_cannot_speak_text(hub) -> None:
    add(hub, "ok-1")
    cid = _text_bulletin(hub)
    sub = send(hub, {"verb": "play", "content_id": cid, "target": {"devices": ["OK-1"]}})
    work(hub)
    state, reason = _states(hub, sub.command.id)["OK-1"]
    assert state == "unsupported"
    assert reason.startswith("device lacks audio.speak_text") and f"content {cid} is text with no synthesised audio" in reason


def test_a_text_bulletin_with_its_synthesised_audio_is_played(hub) -> None:
    add(hub, "ok-1")
    info = hub.media_store().put("speech/ab/abc.mp3", b"ID3 stand-in for synthesised audio", "audio/mpeg")
    cid = _text_bulletin(hub, {"key": info.key, "media_type": info.media_type, "sha256": info.sha256,
                               "duration_s": 3.0, "size": info.size})
    sub = send(hub, {"verb": "play", "content_id": cid, "target": {"devices": ["OK-1"]}})
    work(hub)
    assert _states(hub, sub.command.id) == {"OK-1": ("acked", None)}


def test_on_device_speech_is_a_capability_of_the_vocabulary() -> None:
    assert CAPABILITIES["audio.speak_text"] == "Speak a bulletin's text on the device"
    assert VOCABULARY_VERSION == "1.1"
    assert required_capabilities("play", "tts_text", has_audio=False) == {"audio.speak_text"}
    assert required_capabilities("play", "tts_text", has_audio=True) == {"audio.play_url"}
