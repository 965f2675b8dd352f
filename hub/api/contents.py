"""Contents: bulletins (bản tin) to play or show, each belonging to an area.

Reads are area-filtered (hub.content.editing.readable): an account restricted to some areas sees
every content of its areas and below, and the published contents of the areas above it and of no
area — a commune reads the province's bulletins once they are out, never its drafts. A content the
caller cannot read answers 404 to a read and 403 (rule `area`) to a write. Writes go through
hub.content.editing, which applies the editorial workflow (hub.content.workflow); its refusals
answer JSON with the `rule` broken (hub.api.errors). The workflow actions and versions are in hub.api.content_workflow.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import flask
import marshmallow as ma
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hub.access.permissions import ANYONE, CONTENT_WRITERS
from hub.api.common import HubBlueprint, QueryArgs, actor, fail, not_found, page_of, runtime
from hub.api.schemas import ContentCreateSchema, ContentEditSchema, ContentOutSchema
from hub.capabilities import PRIORITIES
from hub.content import editing, publishing
from hub.content.workflow import WorkflowError
from hub.hookspecs import hookimpl
from hub.schemas.content import CONTENT_KINDS
from hub.store.content_tables import ContentStatus
from hub.store.db import utcnow
from hub.store.models import Content

blp = HubBlueprint("contents", __name__, url_prefix="/api/contents",
                   description="Bulletins: audio files, text to speak, live streams and LED text or images. "
                               "A content belongs to an area and goes draft → submitted → approved → "
                               "published → archived (or rejected with a reason); only a published one may be "
                               "sent to devices.")

# Who may call each view (hook register_blueprints; hub.access.permissions refuses the rest).
RULES = {"Contents": {"GET": ANYONE, "POST": CONTENT_WRITERS},
         "ContentById": {"GET": ANYONE, "PATCH": CONTENT_WRITERS}}

STATUSES = [s.value for s in ContentStatus]


class ContentQuery(QueryArgs):
    kind = ma.fields.Str(validate=ma.validate.OneOf(CONTENT_KINDS))
    category = ma.fields.Str()
    priority = ma.fields.Str(validate=ma.validate.OneOf(PRIORITIES))
    created_by = ma.fields.Str()
    status = ma.fields.Str(validate=ma.validate.OneOf(STATUSES), metadata={
        "description": "Only contents in this workflow status (published includes those made before the workflow)"})
    area = ma.fields.Str(metadata={"description": "Only contents of this area (its own, not its subtree)"})


def visible_content(session: Session, content_id: str) -> Content:
    """The content, or 404 when it does not exist or the caller may not read it."""
    content = session.get(Content, content_id)
    if content is None or not editing.can_read(session, actor(), content):
        not_found("content", content_id)
    return content


def writable_content(session: Session, content_id: str) -> Content:
    """The content to change: 404 when it does not exist; 403 (rule area) when it lies outside
    what the caller may read — the message does not say where it belongs, nor its status."""
    content = session.get(Content, content_id)
    if content is None:
        not_found("content", content_id)
    if not editing.can_read(session, actor(), content):
        raise WorkflowError(f"content {content_id} lies outside the areas of {actor().name}", rule="area")
    return content


def _check_horizon(data: dict[str, Any]) -> None:
    days = runtime().settings.schedule_horizon_days
    for key in ("valid_from", "valid_until"):
        if data.get(key) is not None and data[key] > utcnow() + timedelta(days=days):
            fail(422, f"lies more than {days} days ahead (schedule_horizon_days): leave it out for no end",
                 field=key)


def with_etag(content: Content, status: int = 200) -> tuple[Content, int, dict[str, str]]:
    """The content with its version as ETag, for If-Match on the next edit."""
    return content, status, {"ETag": f'"{content.version or 1}"'}


def _if_match() -> int | None:
    """The version an If-Match header names ("3", W/"3" or 3); None without one."""
    raw = flask.request.headers.get("If-Match")
    if not raw or raw.strip() == "*":
        return None
    tag = raw.split(",")[0].strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        fail(422, f"If-Match {raw!r}: give the content's version as its ETag, e.g. \"3\"", field="If-Match",
             location="headers")
    return int(tag)


@blp.route("")
class Contents(MethodView):
    @blp.arguments(ContentQuery, location="query", as_kwargs=True)
    @blp.response(200, ContentOutSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters, **filters: Any) -> list[Content]:
        """List contents

        Danh sách bản tin, newest first: those the caller may read (see the module description).
        """
        with runtime().db.session() as s:
            stmt = select(Content).order_by(Content.created_at.desc(), Content.id)
            cond = editing.readable(s, actor())
            if cond is not None:
                stmt = stmt.where(cond)
            status = filters.pop("status", None)
            if status == ContentStatus.PUBLISHED:
                stmt = stmt.where(or_(Content.status == status, Content.status.is_(None)))
            elif status is not None:
                stmt = stmt.where(Content.status == status)
            area = filters.pop("area", None)
            if area is not None:
                stmt = stmt.where(Content.area_code == area)
            for key, value in filters.items():
                stmt = stmt.where(getattr(Content, key) == value)
            return page_of(s, stmt, pagination_parameters)

    @blp.arguments(ContentCreateSchema)
    @blp.response(201, ContentOutSchema)
    @blp.fails(403, 422)
    def post(self, data: dict[str, Any]) -> tuple[Content, int, dict[str, str]]:
        """Create a content

        Tạo bản tin: a draft of `area_code` (required unless the caller's account is for every
        area), version 1; `created_by` is the caller. `"publish": true` lets an administrator
        approve and publish it at once (the emergency path).
        """
        _check_horizon(data)
        publish = data.pop("publish", False)
        with runtime().db.session() as s:
            content = editing.create(s, actor(), data)
            if publish:
                editing.transition(s, actor(), content, "approve_and_publish")
            cid = content.id
        if not (publish and publishing.needs_speech(content)):
            return with_etag(content, 201)
        publishing.speak(runtime(), [cid])  # committed first: synthesis takes seconds
        with runtime().db.session() as s:
            return with_etag(visible_content(s, cid), 201)


@blp.route("/<string:content_id>")
class ContentById(MethodView):
    @blp.response(200, ContentOutSchema)
    @blp.fails(404)
    def get(self, content_id: str) -> tuple[Content, int, dict[str, str]]:
        """Show a content"""
        with runtime().db.session() as s:
            return with_etag(visible_content(s, content_id))

    @blp.arguments(ContentEditSchema(partial=True))
    @blp.response(200, ContentOutSchema)
    @blp.fails(403, 404, 409, 422)
    def patch(self, data: dict[str, Any], content_id: str) -> tuple[Content, int, dict[str, str]]:
        """Edit a content

        Sửa bản tin: the fields given change, as one new version (GET …/versions). Only a draft,
        submitted or rejected content may be edited, and editing makes it a draft again. Send the
        version you edited (`version`, or the ETag in If-Match): if someone changed it since, the
        edit is refused (409, rule `stale`).
        """
        _check_horizon(data)
        expected = data.pop("version", None)
        header = _if_match()
        if expected is not None and header is not None and expected != header:
            fail(422, f"version {expected} and If-Match {header} disagree: send one", field="version")
        note = data.pop("note", None)
        with runtime().db.session() as s:
            content = writable_content(s, content_id)
            editing.edit(s, actor(), content, data, note=note,
                         expected_version=expected if expected is not None else header)
            return with_etag(content)


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
