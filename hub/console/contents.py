"""Contents (bản tin): the bulletins of the reader's areas by status, composing a text bulletin,
hearing it spoken before it goes anywhere, and the editorial workflow's steps — submit, approve or
reject (by someone other than the author: four eyes), publish, archive.

Every step goes through hub.content.editing (the layer the API and the CLI use), so the console can
skip no rule; a refusal is the workflow's rule told as a sentence (content_refusals). The speech
preview is made by the offline voice (`speech_emergency_providers`, espeak-ng by default) into the
media store's speech cache, keyed by the text: publishing the same text later finds it there.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import func, select

from hub.access.permissions import ANYONE, CONTENT_WRITERS
from hub.console.common import NavEntry, actor, add_nav, console_blueprint, runtime
from hub.console.content_refusals import from_workflow
from hub.console.refusals import Refusal
from hub.console.scope import visible_areas
from hub.content import editing, publishing
from hub.content.speech import render
from hub.content.workflow import TRANSITIONS, WorkflowError, status_of
from hub.media import MediaError
from hub.schemas.content import ContentSchema
from hub.speech import SpeechError
from hub.store.content_tables import ContentStatus
from hub.store.models import Area, Content

bp = console_blueprint("console_contents", __name__)


@bp.context_processor
def _words() -> dict[str, Any]:
    return {"status_word": lambda st: str(STATUS_WORDS.get(st, st)), "action_word": lambda a: str(ACTION_WORDS[a])}


RULES = {"content_list": {"GET": ANYONE},
         "new_content": {"GET": CONTENT_WRITERS, "POST": CONTENT_WRITERS},
         "content_page": {"GET": ANYONE},
         "content_action": {"POST": ANYONE},  # each action's roles are the workflow's (editing.transition)
         "speech_preview": {"GET": ANYONE}}

add_nav(NavEntry("contents", _l("Contents"), "console_contents.content_list", order=40))

STATUSES = tuple(ContentStatus)
STATUS_WORDS = {ContentStatus.DRAFT: _l("draft"), ContentStatus.SUBMITTED: _l("waiting for approval"),
                ContentStatus.APPROVED: _l("approved, not yet published"), ContentStatus.PUBLISHED: _l("published"),
                ContentStatus.REJECTED: _l("sent back"), ContentStatus.ARCHIVED: _l("archived")}
ACTION_WORDS = {"submit": _l("Submit for approval"), "approve": _l("Approve"), "reject": _l("Send back"),
                "publish": _l("Publish"), "archive": _l("Archive")}
LISTED = 100
# The steps offered as buttons, in the order a bulletin goes through them.
ACTIONS = ("submit", "approve", "reject", "publish", "archive")


def _readable(s: Any, content_id: str) -> Content:
    content = s.get(Content, content_id)
    if content is None or not editing.can_read(s, actor(), content):
        flask.abort(404)
    return content


@bp.get("/console/contents")
def content_list() -> Any:
    """The bulletins the reader may read, of one status (those waiting for someone first)."""
    status = flask.request.args.get("status", "")
    with runtime().db.session() as s:
        cond = editing.readable(s, actor())
        base = select(Content) if cond is None else select(Content).where(cond)
        counted = select(func.coalesce(Content.status, ContentStatus.PUBLISHED), func.count()).group_by(
            func.coalesce(Content.status, ContentStatus.PUBLISHED))
        counts = dict(s.execute(counted if cond is None else counted.where(cond)).all())
        stmt = base.order_by(Content.updated_at.desc().nulls_last(), Content.created_at.desc()).limit(LISTED)
        if status in STATUSES:
            stmt = stmt.where(Content.status == status) if status != ContentStatus.PUBLISHED else stmt.where(
                func.coalesce(Content.status, ContentStatus.PUBLISHED) == status)
        return flask.render_template("contents.html", contents=list(s.scalars(stmt)), counts=counts,
                                     statuses=STATUSES, status=status, status_of=status_of,
                                     may_write=actor().has_any(CONTENT_WRITERS))


@bp.route("/console/contents/new", methods=["GET", "POST"])
def new_content() -> Any:
    """Compose a text bulletin (tts_text: spoken on the loudspeakers); it starts as a draft."""
    f = flask.request.form
    form = {"title": f.get("title", "").strip(), "body": f.get("body", "").strip(), "area_code": f.get("area_code", "")}
    refusals: list[Refusal] = []
    if flask.request.method == "POST":
        try:
            data = ContentSchema().load({"title": form["title"], "kind": "tts_text", "language": "vi",
                                         "body": form["body"], "area_code": form["area_code"] or None})
            with runtime().db.session() as s:
                content = editing.create(s, actor(), data)
                content_id = content.id
            return flask.redirect(flask.url_for("console_contents.content_page", content_id=content_id))
        except ValidationError as exc:
            refusals = [Refusal(_("The bulletin needs a title (at most 300 characters) and a text to speak."),
                                str(exc.normalized_messages()))]
        except WorkflowError as exc:
            refusals = [from_workflow(exc)]
    with runtime().db.session() as s:
        body = flask.render_template("content_new.html", form=form, areas=visible_areas(s), refusals=refusals)
    return flask.make_response(body, 422 if refusals else 200)


def _offered(content: Content) -> list[str]:
    """The steps whose roles and starting status fit: the buttons shown (the workflow still decides)."""
    status = status_of(content)
    return [a for a in ACTIONS if status in TRANSITIONS[a].sources and actor().has_any(TRANSITIONS[a].roles)]


def _page(content_id: str, refusals: list[Refusal] | None = None, status: int = 200) -> flask.Response:
    with runtime().db.session() as s:
        content = _readable(s, content_id)
        body = flask.render_template("content.html", c=content, status=status_of(content), actions=_offered(content),
                                     versions=editing.versions(s, content), refusals=refusals or [],
                                     speakable=publishing.needs_speech(content),
                                     area=s.get(Area, content.area_code) if content.area_code else None)
    return flask.make_response(body, status)


@bp.get("/console/contents/<content_id>")
def content_page(content_id: str) -> Any:
    return _page(content_id)


@bp.post("/console/contents/<content_id>/action")
def content_action(content_id: str) -> Any:
    """One step of the workflow; a published text bulletin is spoken at once, as the API does."""
    action = flask.request.form.get("action", "")
    reason = flask.request.form.get("reason") or None
    try:
        with runtime().db.session() as s:
            content = _readable(s, content_id)
            if action not in ACTIONS:
                raise WorkflowError(f"unknown action {action!r}", rule="action")
            editing.transition(s, actor(), content, action, reason)
            spoken = content.status == ContentStatus.PUBLISHED and publishing.needs_speech(content)
    except WorkflowError as exc:
        return _page(content_id, [from_workflow(exc)], 403 if exc.rule in ("role", "area", "four_eyes") else 409)
    if spoken:
        publishing.speak(runtime(), [content_id])  # committed first: synthesis takes a while
    return flask.redirect(flask.url_for("console_contents.content_page", content_id=content_id))


@bp.get("/console/contents/<content_id>/speech.mp3")
def speech_preview(content_id: str) -> Any:
    """The bulletin's text spoken by the offline voice, for its author and approvers to hear before it
    is published; nothing of the content is changed (the copy spoken is not the stored row)."""
    rt = runtime()
    with runtime().db.session() as s:
        content = _readable(s, content_id)
        if not publishing.needs_speech(content):
            flask.abort(404)
        draft = Content(id=content.id, kind=content.kind, body=content.body, language=content.language)
    settings = rt.settings
    if settings.speech_emergency_providers:  # offline: a preview must not wait on an internet voice
        settings = dataclasses.replace(settings, speech_providers=list(settings.speech_emergency_providers))
    store = rt.media_store()
    try:
        out = render(store, draft, settings, rt.plugins.speech_providers())
        data = store.get(out["media"]["key"]).data
    except (SpeechError, MediaError) as exc:
        return flask.make_response(str(exc), 503, {"Content-Type": "text/plain; charset=utf-8"})
    return flask.Response(data, mimetype=out["media"]["media_type"] or "audio/mpeg",
                          headers={"Cache-Control": "private, max-age=300"})


__all__ = ["bp"]
