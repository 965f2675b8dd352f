"""What publishing does beyond the status: a text bulletin is spoken, once, before any device needs it.

Called after the transaction that published a content has committed (synthesis takes seconds;
holding a write transaction open that long would stall every other writer of SQLite). A content
whose text cannot be spoken stays published and says why in `content.speech["error"]`; a device
that cannot speak text itself then ends `unsupported` with that reason instead of playing
silence, and `POST /api/contents/<id>/speak` (or `hub contents speak ID`) tries again.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

from hub.capabilities import EMERGENCY
from hub.config import Settings
from hub.content.speech import render
from hub.content.workflow import status_of
from hub.media import MediaError
from hub.runtime import Runtime
from hub.speech import SpeechError
from hub.store.content_tables import ContentStatus
from hub.store.models import Content

log = logging.getLogger(__name__)


def needs_speech(content: Content) -> bool:
    return content.kind == "tts_text" and bool((content.body or "").strip())


def settings_for(settings: Settings, content: Content) -> Settings:
    """An emergency is spoken by `speech_emergency_providers` (the offline voice by default): it
    must not wait out an internet voice's timeout on a network that drops traffic."""
    if content.priority == EMERGENCY and settings.speech_emergency_providers:
        return dataclasses.replace(settings, speech_providers=list(settings.speech_emergency_providers))
    return settings


def speak(rt: Runtime, content_ids: Iterable[str], force: bool = False) -> dict[str, str]:
    """Make the audio of each published `tts_text` content that lacks it (or whose text changed:
    the audio is keyed by the text); {content id: "spoken" | "cached" | the error}. Contents that
    are not published text are passed over."""
    done: dict[str, str] = {}
    for cid in dict.fromkeys(content_ids):
        with rt.db.session() as s:
            content = s.get(Content, cid)
            if content is None or not needs_speech(content) or status_of(content) != ContentStatus.PUBLISHED:
                continue
            try:
                out = render(rt.media_store(), content, settings_for(rt.settings, content),
                             rt.plugins.speech_providers(), force=force)
                done[cid] = "cached" if out["cached"] else "spoken"
            except (SpeechError, MediaError) as exc:
                log.error("content %s is published but could not be spoken: %s", cid, exc)
                content.speech = {**(content.speech or {}), "error": str(exc)[:500]}
                done[cid] = str(exc)
    return done
