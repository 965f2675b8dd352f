"""The emergency in one step: one call writes the bulletin, publishes it, speaks it and sends it
in the emergency class to every device of its target; the answer says how many devices in how
many communes it reaches and names those that cannot receive it.

Order, chosen for speed: the boards are sent the text first (they need no audio), then the text
is spoken by the emergency voice (`speech_emergency_providers`: espeak-ng offline by default, about
0.1–1 s for a bulletin), then the speakers are sent the audio. Sending the speakers before the
audio exists would make every speaker that cannot speak text itself end `unsupported`; the
answer's `timings_ms` shows how long each step took. If speech fails, the speakers are sent all the
same and those that cannot speak text end `unsupported` with the reason (never silent `acked`).

Each kind gets its own ordinary command (`play` to speakers, `led_show` to boards) with one
delivery row per device, tracked to a terminal state like any command; the `emergencies` row ties
them to the content. Who may fire, and why without a second approver: hub.content.workflow
(EMERGENCY_ISSUERS, EMERGENCY_RULE) — operators and administrators, within their areas. One audit
entry, `emergency.fire`, names the actor and states that rule (the dispatcher adds its own
`command.submit` entry per command, as for every command).
"""
from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.access import audit
from hub.access.actors import Actor
from hub.broadcast import emergency_scope as scope
from hub.broadcast.emergency_request import EmergencyRequest, read
from hub.capabilities import EMERGENCY
from hub.content import publishing
from hub.content.speech import render
from hub.content.workflow import EMERGENCY_RULE, check_emergency
from hub.delivery.dispatch import DispatchError, submit
from hub.media import MediaError
from hub.runtime import Runtime
from hub.schemas import CommandSchema
from hub.schemas.content import ContentSchema
from hub.speech import SpeechError
from hub.store.content_tables import ContentStatus, ContentVersion
from hub.store.db import utcnow
from hub.store.emergency_tables import Emergency
from hub.store.models import Area, Content, Delivery, DeliveryState, Device

log = logging.getLogger(__name__)
STOP_VERB = {"speaker": "stop", "led_board": "led_clear"}
# Boards are told to clear the text when the emergency expires (led_show duration_s); 65,535 s (18 h)
# is the most a 16-bit duration register holds (Modbus boards): a longer emergency's text clears
# then, and `stop` or a new led_show is what ends or renews it.
BOARD_HOLD_MAX_S = 65535


def _kinds_sent(req: EmergencyRequest) -> dict[str, str | None]:
    """Kind → the content kind its verb carries (None: text in params); a kind missing gets nothing."""
    wanted = set(req.target.get("kinds") or scope.VERB_OF_KIND)
    out: dict[str, str | None] = {}
    if "speaker" in wanted and req.speakers_play:
        out["speaker"] = req.content.kind if req.content is not None else "tts_text"
    if "led_board" in wanted:
        out["led_board"] = "led_image" if req.board_text is None else None
    return out


def _checked(rt: Runtime, session: Session, actor: Actor, data: dict[str, Any]) -> tuple[
        EmergencyRequest, list[Device]]:
    check_emergency(actor)
    req = read(rt, session, actor, data)
    return req, scope.targeted(session, actor, req.target)


def preview(rt: Runtime, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    """What firing `data` would reach, with nothing written, sent or spoken."""
    with rt.db.session() as s:
        req, devices = _checked(rt, s, actor, data)
        has_audio = req.content is None or bool((req.content.media or {}).get("key")
                                                 or (req.content.media or {}).get("uri"))
        fates = scope.predicted(s, devices, rt.plugins.vendors(), _kinds_sent(req), has_audio)
        s.rollback()  # a dry run: not even a read's side effect is kept
        return {"preview": True, "title": req.title, "source": req.source, "expires_at": req.expires_at,
                "target": req.target, **scope.summary(s, fates)}


# -- firing ----------------------------------------------------------------------------------------
def _common_area(paths: list[str]) -> str | None:
    """The deepest area whose subtree holds every path ("/80/807/28099/" …)."""
    chains = [[c for c in p.strip("/").split("/") if c] for p in paths]
    if not chains:
        return None
    common: list[str] = []
    for codes in zip(*chains):
        if len(set(codes)) != 1:
            break
        common.append(codes[0])
    return common[-1] if common else None


def _area_for(session: Session, actor: Actor, req: EmergencyRequest, devices: list[Device]) -> str | None:
    """The area the new content belongs to: the deepest one holding all the target names (or all
    it selects), within the actor's areas — their area holding the most devices otherwise."""
    named = list(req.target.get("areas") or ())
    paths = list(session.scalars(select(Area.path).where(Area.code.in_(named)))) if named else \
        [d.area.path for d in devices]
    code = _common_area(paths)
    if actor.unrestricted:
        return code
    path = session.scalar(select(Area.path).where(Area.code == code)) if code else None
    if path is not None and actor.may_touch(session, path):
        return code
    mine = sorted(actor.areas or ())
    counts = {a: sum(f"/{a}/" in d.area.path for d in devices) for a in mine}
    return max(mine, key=lambda a: counts[a]) if mine else None


def _new_content(session: Session, actor: Actor, req: EmergencyRequest, area_code: str | None,
                 now: datetime) -> Content:
    """The bulletin, published at once under the emergency rule (no second approver)."""
    try:
        fields = ContentSchema().load({"title": req.title[:300], "kind": "tts_text", "language": req.language,
                                       "body": req.text, "priority": EMERGENCY})
    except ValidationError as exc:
        name, messages = next(iter(exc.normalized_messages().items()))
        message = messages[0] if isinstance(messages, list) else messages
        raise DispatchError("text" if name == "body" else name, str(message)) from None
    content = Content(id=uuid.uuid4().hex, area_code=area_code, valid_until=req.expires_at, origin=req.origin,
                      created_by=actor.name, created_at=now, updated_by=actor.name, updated_at=now, version=1,
                      status=ContentStatus.PUBLISHED, published_by=actor.name, published_at=now,
                      **{k: fields[k] for k in ("title", "kind", "language", "body", "priority")})
    session.add(content)
    session.flush()
    session.add(ContentVersion(content_id=content.id, version=1, changed_by=actor.name, changed_at=now,
                               changes={k: [None, fields[k]] for k in ("title", "body")},
                               note=EMERGENCY_RULE))
    return content


def _speak(rt: Runtime, content_id: str, voice: str | None) -> dict[str, Any]:
    """Speak the bulletin with the emergency voice (and `voice`); what the content's speech says."""
    started = time.monotonic()
    with rt.db.session() as s:
        content = s.get(Content, content_id)
        settings = publishing.settings_for(rt.settings, content)
        if voice:
            settings = dataclasses.replace(settings, speech_voices={n: voice for n in settings.speech_providers})
        try:
            render(rt.media_store(), content, settings, rt.plugins.speech_providers())
        except (SpeechError, MediaError) as exc:
            log.error("emergency %s could not be spoken: %s", content_id, exc)
            content.speech = {**(content.speech or {}), "error": str(exc)[:500]}
        speech = dict(content.speech or {})
    return {"provider": speech.get("provider"), "voice": speech.get("voice"), "error": speech.get("error"),
            "cached": speech.get("cached"), "ms": round((time.monotonic() - started) * 1000)}


def _send(rt: Runtime, actor: Actor, verb: str, kind: str, target: dict[str, Any], expires_at: datetime,
          content_id: str | None = None, params: dict[str, Any] | None = None) -> str:
    raw: dict[str, Any] = {"verb": verb, "priority": EMERGENCY, "target": {**target, "kinds": [kind]},
                           "expires_at": expires_at.isoformat(), "params": params or {}}
    if content_id is not None:
        raw["content_id"] = content_id
    return submit(rt, actor, CommandSchema().load(raw)).command.id


def _replayed(session: Session, actor: Actor, key: str | None) -> dict[str, Any] | None:
    if not key:
        return None
    em = session.scalars(select(Emergency).where(Emergency.issuer == actor.name,
                                                 Emergency.idempotency_key == key)).first()
    return None if em is None else {**em.scope, "replayed": True}


def fire(rt: Runtime, actor: Actor, data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Fire the emergency `data` asks for; (the answer, whether it was fired now rather than
    replayed for a repeated idempotency_key)."""
    started = time.monotonic()
    ms = lambda: round((time.monotonic() - started) * 1000)  # noqa: E731
    now = utcnow()
    with rt.db.session() as s:
        check_emergency(actor)
        prior = _replayed(s, actor, data.get("idempotency_key"))
        if prior is not None:
            return prior, False
        req, devices = _checked(rt, s, actor, data)
        sent = _kinds_sent(req)
        groups = scope.by_kind(devices)
        if not any(groups.get(kind) for kind in sent):
            raise DispatchError("target", f"selects no device that can play or show this emergency "
                                          f"({len(devices)} selected)")
        content = req.content or _new_content(s, actor, req, _area_for(s, actor, req, devices), now)
        em = Emergency(id=uuid.uuid4().hex, content_id=content.id, issuer=actor.name, issuer_id=actor.user_id,
                       idempotency_key=data.get("idempotency_key"), target=_plain(req.target), scope={},
                       created_at=now, expires_at=req.expires_at)
        s.add(em)
        try:
            s.flush()
        except IntegrityError:  # the same key at the same moment: the other request fired it
            s.rollback()
            prior = _replayed(s, actor, data.get("idempotency_key"))
            if prior is None:
                raise
            return prior, False
        em_id, content_id, needs_speech = em.id, content.id, publishing.needs_speech(content) and not (
            (content.media or {}).get("key") or (content.media or {}).get("uri"))
    commands: dict[str, str | None] = {"play": None, "led_show": None}
    timings: dict[str, int] = {}
    speech: dict[str, Any] | None = None
    try:
        if groups.get("led_board") and "led_board" in sent:  # boards first: they need no audio
            duration = max(1, min(BOARD_HOLD_MAX_S, int((req.expires_at - utcnow()).total_seconds())))
            params = {"text": req.board_text, "duration_s": duration} if req.board_text is not None else {}
            commands["led_show"] = _send(rt, actor, "led_show", "led_board", req.target, req.expires_at,
                                         content_id=content_id, params=params)
            timings["boards_sent"] = ms()
        if groups.get("speaker") and "speaker" in sent:
            if needs_speech:
                speech = _speak(rt, content_id, req.voice)
                timings["spoken"] = ms()
            commands["play"] = _send(rt, actor, "play", "speaker", req.target, req.expires_at, content_id=content_id)
            timings["speakers_sent"] = ms()
    finally:  # whatever went out is on record, with the actor, even if a later step failed
        with rt.db.session() as s:
            em = s.get(Emergency, em_id)
            ids = [c for c in commands.values() if c]
            answer = {"emergency_id": em_id, "content_id": content_id,
                      "command_id": commands["play"] or commands["led_show"], "commands": commands,
                      "source": req.source, "title": req.title, "expires_at": req.expires_at.isoformat(),
                      "speech": speech, "timings_ms": timings,
                      **scope.summary(s, scope.actual(s, ids, devices))}
            em.play_command_id, em.led_command_id = commands["play"], commands["led_show"]
            answer = _plain(answer)
            em.timings_ms, em.scope = timings, answer
            complete = all(commands[scope.VERB_OF_KIND[k]] for k in sent if groups.get(k))
            audit.record(s, actor, "emergency.fire", "content", content_id,
                         {"emergency": em_id, "rule": EMERGENCY_RULE, "source": req.source, "title": req.title,
                          "text": (req.text or "")[:500] or None, "commands": commands, "target": em.target,
                          "expires_at": answer["expires_at"], "reaches": answer["reaches"],
                          "communes": answer["communes"], "cannot_receive": len(answer["cannot_receive"]),
                          **({} if complete else {"incomplete": True})},
                         areas={d.area_code for d in devices} | set(req.target.get("areas") or ()))
    return {**answer, "replayed": False}, True


def _plain(value: Any) -> Any:
    """`value` as a JSON column keeps it (datetimes as ISO text)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.isoformat() if isinstance(value, datetime) else value


# -- stopping --------------------------------------------------------------------------------------
def find(session: Session, command_id: str) -> Emergency | None:
    """The emergency one of whose commands is `command_id`."""
    return session.scalars(select(Emergency).where(or_(Emergency.play_command_id == command_id,
                                                       Emergency.led_command_id == command_id))).first()


def stop(rt: Runtime, actor: Actor, command_id: str) -> dict[str, Any]:
    """End an emergency early: `stop` to its speakers and `led_clear` to its boards, in the
    emergency class (rows of it not yet sent are superseded). The same rights as sending to
    those devices; audited as `emergency.stop`."""
    check_emergency(actor)
    with rt.db.session() as s:
        em = find(s, command_id)
        if em is None:
            raise DispatchError(None, f"no emergency has command {command_id}", status=404)
        if em.stopped_at is not None:
            raise DispatchError(None, f"emergency {em.id} was stopped by {em.stopped_by} at "
                                      f"{em.stopped_at.isoformat(timespec='seconds')}", status=409)
        reached: dict[str, list[str]] = {}
        for cid, kind in ((em.play_command_id, "speaker"), (em.led_command_id, "led_board")):
            if cid:
                reached[kind] = list(s.scalars(select(Delivery.device_id).where(
                    Delivery.command_id == cid,
                    Delivery.state.notin_((DeliveryState.FAILED, DeliveryState.UNSUPPORTED))).order_by(
                    Delivery.device_id)))
        em_id, content_id = em.id, em.content_id
    stopped: dict[str, str] = {}
    expires = utcnow() + timedelta(seconds=rt.settings.default_ttl_s)
    for kind, ids in reached.items():
        if ids:
            stopped[STOP_VERB[kind]] = _send(rt, actor, STOP_VERB[kind], kind, {"devices": ids}, expires)
    with rt.db.session() as s:
        em = s.get(Emergency, em_id)
        em.stopped_at, em.stopped_by, em.stop_command_ids = utcnow(), actor.name, list(stopped.values())
        devices = sorted({d for ids in reached.values() for d in ids})
        areas = set(s.scalars(select(Device.area_code).where(Device.id.in_(devices)))) if devices else set()
        audit.record(s, actor, "emergency.stop", "content", content_id,
                     {"emergency": em_id, "commands": stopped, "devices": len(devices)}, areas=areas)
        return {"emergency_id": em_id, "content_id": content_id, "stopped_at": em.stopped_at.isoformat(),
                "stopped_by": actor.name, "commands": stopped, "devices": len(devices)}
