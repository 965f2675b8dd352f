"""Contents: bulletins (bản tin) to play or show, independent of where they go."""
from __future__ import annotations

import uuid
from datetime import timedelta
from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import select

from hub.api.common import HubBlueprint, QueryArgs, actor, audit, fail, not_found, page_of, runtime
from hub.api.schemas import ContentOutSchema
from hub.capabilities import PRIORITIES
from hub.store.db import utcnow
from hub.store.models import Content
from hub.schemas.content import CONTENT_KINDS, ContentSchema
from hub.access.permissions import ANYONE, CONTENT_WRITERS
from hub.hookspecs import hookimpl

blp = HubBlueprint("contents", __name__, url_prefix="/api/contents",
                   description="Bulletins: audio files, text to speak, live streams and LED text or images. "
                               "Contents carry no area, so every caller may read them; commands decide "
                               "where they go.")

# Who may call each view (hook register_blueprints; hub.access.permissions refuses the rest).
RULES = {"Contents": {"GET": ANYONE, "POST": CONTENT_WRITERS},
         "ContentById": {"GET": ANYONE}}


class ContentQuery(QueryArgs):
    kind = ma.fields.Str(validate=ma.validate.OneOf(CONTENT_KINDS))
    category = ma.fields.Str()
    priority = ma.fields.Str(validate=ma.validate.OneOf(PRIORITIES))
    created_by = ma.fields.Str()


@blp.route("")
class Contents(MethodView):
    @blp.arguments(ContentQuery, location="query", as_kwargs=True)
    @blp.response(200, ContentOutSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters, **filters: Any) -> list[Content]:
        """List contents

        Danh sách bản tin, newest first.
        """
        with runtime().db.session() as s:
            stmt = select(Content).order_by(Content.created_at.desc(), Content.id)
            for key, value in filters.items():
                stmt = stmt.where(getattr(Content, key) == value)
            return page_of(s, stmt, pagination_parameters)

    @blp.arguments(ContentSchema)
    @blp.response(201, ContentOutSchema)
    def post(self, data: dict[str, Any]) -> Content:
        """Create a content

        Tạo bản tin. The hub assigns the id; `created_by` is the caller.
        """
        days = runtime().settings.schedule_horizon_days
        for key in ("valid_from", "valid_until"):
            if data.get(key) is not None and data[key] > utcnow() + timedelta(days=days):
                fail(422, f"lies more than {days} days ahead (schedule_horizon_days): leave it out for no end",
                     field=key)
        with runtime().db.session() as s:
            content = Content(id=uuid.uuid4().hex, created_by=actor().name, created_at=utcnow(), **data)
            s.add(content)
            audit(s, "content.create", "content", content.id, {"kind": content.kind, "title": content.title})
            return content


@blp.route("/<string:content_id>")
class ContentById(MethodView):
    @blp.response(200, ContentOutSchema)
    @blp.fails(404)
    def get(self, content_id: str) -> Content:
        """Show a content"""
        with runtime().db.session() as s:
            content = s.get(Content, content_id)
            if content is None:
                not_found("content", content_id)
            return content


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
