"""What a one-step emergency asks for, checked whole before anything is written.

One of three things says what is broadcast: `text` (spoken by the emergency voice and shown on
the boards), `content_id` (a published content, sent as it is) or `cap` (a CAP 1.2 alert: its
headline, description and instruction, its areas and polygons, its expiry). The target is the
request's, or else the CAP alert's own areas. Every refusal is a DispatchError naming the field,
so the API answers 4xx JSON and the command line one line; a preview refuses exactly what firing
would refuse. CAP is read by the `cap` source plugin through the plugin manager
(hub.source.Source.read_document): the core never imports a plugin.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.access.actors import Actor
from hub.content import editing
from hub.delivery.dispatch import DispatchError
from hub.runtime import Runtime
from hub.source import SourceError, SourceItem
from hub.store.content_tables import ContentStatus
from hub.store.db import utcnow
from hub.store.models import Area, Content
from hub.text import led_text_problem

SOURCES = ("text", "content_id", "cap")
LED_MAX = 2000  # hub.schemas.command.LedShowParams.text
SPOKEN_KINDS = frozenset({"audio_file", "tts_text", "stream"})  # what a speaker can play of a content
DEFAULT_TITLE = "Thông báo khẩn"


@dataclass
class EmergencyRequest:
    """The checked request. `text` is set for text and CAP (a new content is made from it);
    `content` for content_id. `board_text` is what boards show (None: a led_image content)."""

    title: str
    target: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None  # set by read(): the request's, the alert's, or the default
    language: str = "vi"
    text: str | None = None
    voice: str | None = None
    content: Content | None = None
    board_text: str | None = None
    speakers_play: bool = True  # whether the content is something a speaker plays
    origin: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return "content" if self.content is not None else self.origin.get("source", "text")


def read(rt: Runtime, session: Session, actor: Actor, data: dict[str, Any]) -> EmergencyRequest:
    """The request `data` (loaded by hub.api.emergency.EmergencySchema) checked; DispatchError
    naming the field otherwise. Area rights are checked by hub.broadcast.emergency_scope."""
    given = [k for k in SOURCES if data.get(k) is not None]
    if not given:
        raise DispatchError("text", "give text to speak, content_id of a published content, or cap (a CAP 1.2 "
                                    "alert)")
    if len(given) > 1:
        raise DispatchError(given[1], f"give one of text, content_id or cap, not both {given[0]} and {given[1]}")
    if data.get("voice") and given[0] == "content_id":
        raise DispatchError("voice", "a content is sent as it was published; voice applies to text or cap")
    now = utcnow()
    if given[0] == "text":
        req = _from_text(data)
    elif given[0] == "cap":
        req = _from_cap(rt, session, data)
    else:
        req = _from_content(session, actor, data["content_id"], now)
    if data.get("target"):
        req.target = data["target"]
    if not req.target:
        raise DispatchError("target", "give the areas, groups, devices or geometry the emergency is for")
    if data.get("expires_at") is not None:
        req.expires_at = _expiry(rt, data["expires_at"], now, "expires_at")
    else:  # the alert's own expiry, else the default
        req.expires_at = _expiry(rt, req.expires_at, now, "cap")
    if req.content is not None and req.content.valid_until:  # a content is not sent past its validity
        req.expires_at = min(req.expires_at, _aware(req.content.valid_until))
    req.voice = data.get("voice") or None
    if req.voice:
        _check_voice(rt, req.voice)
    return req


def _from_text(data: dict[str, Any]) -> EmergencyRequest:
    text = (data.get("text") or "").strip()
    if not text:
        raise DispatchError("text", "is empty: give the words to speak and show")
    title = (data.get("title") or "").strip() or _title_of(text)
    return EmergencyRequest(title=title, text=text, board_text=_board_text(text, "text"),
                            origin={"source": "emergency"})


def _title_of(text: str) -> str:
    first = " ".join(text.split())
    return first if len(first) <= 80 else first[:79].rstrip() + "…"


def _board_text(text: str, field_name: str) -> str:
    """What a board shows: one line (boards refuse line breaks), at most LED_MAX characters."""
    line = " ".join(text.split())
    if len(line) > LED_MAX:
        line = line[:LED_MAX - 1].rstrip() + "…"
    problem = led_text_problem(line)
    if problem:
        raise DispatchError(field_name, f"cannot be shown on a board: {problem}")
    return line


def _from_cap(rt: Runtime, session: Session, data: dict[str, Any]) -> EmergencyRequest:
    cls = rt.plugins.sources().get("cap")
    if cls is None:
        raise DispatchError("cap", "no CAP source plugin (hub-source-cap) is installed on this hub")
    try:
        item = cls(rt.settings.plugin_config("cap")).read_document(data["cap"].encode("utf-8"))
    except SourceError as exc:  # CapError names the line and the reason
        raise DispatchError("cap", str(exc)) from None
    if item.withdraws:
        raise DispatchError("cap", f"CAP message {item.external_id} is a Cancel of {', '.join(item.withdraws)}: "
                                   "stop the emergency it fired instead (POST /api/emergency/<command id>/stop)")
    if item.exercise:
        raise DispatchError("cap", f"CAP message {item.external_id} has status Exercise, Test or Draft: it is not "
                                   "fired as an emergency")
    text = (item.text or item.title).strip()
    if not text:
        raise DispatchError("cap", f"CAP message {item.external_id} has no headline, description or instruction "
                                   "to speak")
    title = (data.get("title") or "").strip() or item.title[:300]
    return EmergencyRequest(title=title, target=_cap_target(session, item), expires_at=item.expires_at,
                            language=item.language or "vi", text=text,
                            board_text=_board_text(item.title or text, "cap"),
                            origin={"source": "cap", "external_id": item.external_id, "url": item.url})


def _cap_target(session: Session, item: SourceItem) -> dict[str, Any]:
    """The alert's own target, as a source's intake would make it (hub.content.intake.target_for):
    its polygons and circles when it drew any (more precise than the units it names), else the
    administrative units it names that exist here; {} when it names no place."""
    if item.polygons or item.circles:
        return {"geometry": {"polygons": [[list(p) for p in ring] for ring in item.polygons],
                             "circles": [list(c) for c in item.circles]}}
    if item.area_codes:
        known = set(session.scalars(select(Area.code).where(Area.code.in_(item.area_codes))))
        matched = [c for c in item.area_codes if c in known]
        if not matched:
            raise DispatchError("cap", f"CAP message {item.external_id} names areas {', '.join(item.area_codes)}, "
                                       "none of them known here: give target")
        return {"areas": matched}
    return {}


def _from_content(session: Session, actor: Actor, content_id: str, now: datetime) -> EmergencyRequest:
    content = session.get(Content, content_id)
    if content is None or not editing.can_read(session, actor, content):
        raise DispatchError("content_id", f"unknown content {content_id}")
    if content.status is not None and content.status != ContentStatus.PUBLISHED:
        raise DispatchError("content_id", f"content {content_id} is {content.status}; only a published content may "
                                          "be sent (or fire the emergency with its text)", status=409,
                            rule="unpublished")
    if content.valid_until and _aware(content.valid_until) <= now:
        raise DispatchError("content_id", f"content {content_id} expired at {content.valid_until.isoformat()}")
    board = None
    if content.kind != "led_image":
        board = _board_text(content.body if content.kind in ("tts_text", "led_text") and content.body
                            else content.title, "content_id")
    return EmergencyRequest(title=content.title, language=content.language or "vi", content=content,
                            board_text=board, speakers_play=content.kind in SPOKEN_KINDS)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)  # SQLite hands back naive UTC


def _expiry(rt: Runtime, expires_at: datetime | None, now: datetime, field_name: str) -> datetime:
    """`expires_at` checked (None: the default TTL). An alert's own expiry too far ahead is
    shortened to the longest a command may wait (max_command_ttl_s), never refused."""
    longest = timedelta(seconds=rt.settings.max_command_ttl_s)
    if expires_at is None:
        return now + timedelta(seconds=rt.settings.default_ttl_s)
    expires_at = _aware(expires_at)
    if expires_at <= now:
        what = "expires_at" if field_name == "expires_at" else "the alert's expires"
        raise DispatchError(field_name, f"{what} {expires_at.isoformat(timespec='seconds')} has passed: an "
                                        "emergency that already ended would reach nobody")
    if expires_at - now > longest:
        if field_name != "expires_at":
            return now + longest
        raise DispatchError("expires_at", f"lies more than {longest} ahead; see max_command_ttl_s")
    return expires_at


def _check_voice(rt: Runtime, voice: str) -> None:
    """The voice must be one the emergency voices offer (speech_emergency_providers)."""
    names: Sequence[str] = rt.settings.speech_emergency_providers or rt.settings.speech_providers
    installed = rt.plugins.speech_providers()
    offered: list[str] = []
    for name in names:
        if name not in installed:
            continue
        try:
            offered += [v.id for v in installed[name].configured(rt.settings.plugin_config(name)).voices()]
        except Exception:  # a provider that cannot list its voices offers none
            continue
    if voice not in offered:
        raise DispatchError("voice", f"unknown voice {voice!r}; the emergency voices offer "
                                     f"{', '.join(sorted(set(offered))) or 'none'}")
