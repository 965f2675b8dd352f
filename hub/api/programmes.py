"""Programmes (lịch phát): recurring slots as iCalendar, their occurrences in local time, their
overlaps, and `.ics` import and export. Saving goes through hub.broadcast.editing, the same rules
as the command line's."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import flask
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from hub.access.permissions import ANYONE, COMMAND_SENDERS
from hub.api.common import HubBlueprint, actor, fail, runtime
from hub.api.errors import json_error
from hub.api.programme_schemas import (AreaQuery, ConflictSchema, ImportedSchema, ImportSchema, OccurrenceSchema,
                                       ProgrammeChangesSchema, ProgrammeOutSchema, ProgrammeSchema,
                                       RangeQuery)
from hub.broadcast import editing
from hub.broadcast.conflicts import conflicts
from hub.broadcast.ics import export_ics
from hub.broadcast.programmes import ProgrammeError, occurrences
from hub.broadcast.rules import ProgrammeRefused, describe_conflict
from hub.fleet.areas import AreaError
from hub.hookspecs import hookimpl
from hub.store.broadcast_tables import Programme
from hub.store.db import utcnow

blp = HubBlueprint("programmes", __name__, url_prefix="/api",
                   description="Programmes (lịch phát): recurring slots of a published content, a playlist or a "
                               "stream for an area, group or devices, kept as iCalendar; their occurrences become "
                               "scheduled commands ahead of time.")

RULES = {"Programmes": {"GET": ANYONE, "POST": COMMAND_SENDERS},
         "ProgrammeById": {"GET": ANYONE, "PATCH": COMMAND_SENDERS, "DELETE": COMMAND_SENDERS},
         "ProgrammeOccurrences": {"GET": ANYONE},
         "ProgrammeConflicts": {"GET": ANYONE},
         "ProgrammesIcs": {"GET": ANYONE},
         "ProgrammeImport": {"POST": COMMAND_SENDERS}}

MAX_SPAN = timedelta(days=366)
_FIELDS = ("id", "name", "target", "content_id", "playlist", "stream_url", "priority", "ical", "valid_from",
           "valid_until", "area_code", "precedence", "revision", "revised_at", "created_by", "created_at")


@blp.errorhandler(ProgrammeRefused)
def _refused(exc: ProgrammeRefused) -> flask.Response:
    location = "path" if exc.status == 404 else "json"
    return json_error(exc.status, exc.message, {location: {exc.field: exc.lines}} if exc.field else {})


def programme_dict(p: Programme, saved: editing.Saved | None = None) -> dict[str, Any]:
    out = {k: getattr(p, k) for k in _FIELDS}
    out["revision"] = p.revision or 0
    if saved is not None:
        names = {q.id: q.name for q in saved.programmes}
        out["kept_overlaps"] = [describe_conflict(c, names) for c in saved.kept if c.programme_id == p.id]
        m = saved.materialised
        mine = (lambda key: key.startswith(f"programme:{p.id}:"))  # noqa: E731
        out["commands"] = {"created": len([k for k in (m.created if m else []) if mine(k)]),
                           "cancelled": len(saved.cancelled),
                           "skipped_devices": {k: v for k, v in (m.skipped if m else {}).items() if mine(k)},
                           "refused": {k: v for k, v in (m.refused if m else {}).items() if mine(k) or p.id in k}}
    return out


def _area_filter(area: str | None) -> str | None:
    if area is None:
        return None
    with runtime().db.session() as s:
        from hub.fleet.areas import subtree_paths

        try:
            subtree_paths(s, [area])
        except AreaError as exc:
            fail(422, str(exc), field="area", location="query")
    return area


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    start = start or utcnow()
    end = end or start + timedelta(days=7)
    if end <= start:
        fail(422, "must be after from", field="to", location="query")
    if end - start > MAX_SPAN:
        fail(422, f"at most {MAX_SPAN.days} days after from", field="to", location="query")
    return start, end


@blp.route("/programmes")
class Programmes(MethodView):
    @blp.arguments(AreaQuery, location="query", as_kwargs=True)
    @blp.response(200, ProgrammeOutSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters, area: str | None = None) -> list[dict[str, Any]]:
        """List programmes

        Lịch phát the caller sees (playing in its areas), by name; `area`: those playing in that area.
        """
        area = _area_filter(area)
        with runtime().db.session() as s:
            found = editing.listed(s, actor(), area)
            pagination_parameters.item_count = len(found)
            page = found[pagination_parameters.first_item:pagination_parameters.first_item
                         + pagination_parameters.page_size]
            return [programme_dict(p) for p in page]

    @blp.arguments(ProgrammeSchema)
    @blp.response(201, ProgrammeOutSchema)
    @blp.fails(403, 409)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a programme

        Tạo lịch phát. Refused (422 naming the field) unless it plays exactly one published content,
        playlist or stream (not the hub's own service), in a class other than emergency, by a calendar
        that parses; its target must lie in the caller's areas (403). A slot overlapping another
        programme's on a device is refused (409, each overlap named with the device, both local times and
        both programmes) unless `overlap` is "keep" with a `precedence`. Its coming occurrences become
        scheduled commands at once.
        """
        saved = editing.create(runtime(), actor(), data)
        return programme_dict(saved.programmes[0], saved)


@blp.route("/programmes/<string:programme_id>")
class ProgrammeById(MethodView):
    @blp.response(200, ProgrammeOutSchema)
    @blp.fails(404)
    def get(self, programme_id: str) -> dict[str, Any]:
        """Show a programme"""
        with runtime().db.session() as s:
            return programme_dict(editing.get(s, actor(), programme_id))

    @blp.arguments(ProgrammeChangesSchema(partial=True))
    @blp.response(200, ProgrammeOutSchema)
    @blp.fails(403, 404, 409)
    def patch(self, data: dict[str, Any], programme_id: str) -> dict[str, Any]:
        """Edit a programme

        Sửa lịch phát: the same checks as creating it, on its old target and its new one. A new revision:
        its commands not yet started are cancelled and made again from the new calendar.
        """
        saved = editing.update(runtime(), actor(), programme_id, data)
        return programme_dict(saved.programmes[0], saved)

    @blp.response(204)
    @blp.fails(403, 404)
    def delete(self, programme_id: str) -> None:
        """Delete a programme; its commands not yet started are cancelled"""
        editing.delete(runtime(), actor(), programme_id)


@blp.route("/programmes/<string:programme_id>/occurrences")
class ProgrammeOccurrences(MethodView):
    @blp.arguments(RangeQuery, location="query", as_kwargs=True)
    @blp.response(200, OccurrenceSchema(many=True))
    @blp.fails(404)
    def get(self, programme_id: str, start: datetime | None = None, end: datetime | None = None) -> list[Any]:
        """List a programme's occurrences

        Occurrences starting in [from, to), in local time (+07:00), sorted.
        """
        start, end = _window(start, end)
        with runtime().db.session() as s:
            p = editing.get(s, actor(), programme_id)
            try:
                occs = occurrences(p, start, end)
            except ProgrammeError as exc:
                raise ProgrammeRefused("ical", str(exc)) from None
        return [{"start": o.start, "end": o.end, "slot": o.slot, "moved": o.slot != o.start, "key": o.key}
                for o in occs]


@blp.route("/programmes/<string:programme_id>/conflicts")
class ProgrammeConflicts(MethodView):
    @blp.arguments(RangeQuery, location="query", as_kwargs=True)
    @blp.response(200, ConflictSchema(many=True))
    @blp.fails(404)
    def get(self, programme_id: str, start: datetime | None = None, end: datetime | None = None) -> list[Any]:
        """List a programme's overlaps with other programmes

        Per device, with both local times, in [from, to) (default: the coming 7 days).
        """
        start, end = _window(start, end)
        with runtime().db.session() as s:
            p = editing.get(s, actor(), programme_id)
            found = conflicts(s, p, start=start, horizon=end - start)
            names = {q.id: q.name for q in editing.by_ids(s, {p.id} | {c.other_programme_id for c in found})}
        return [{**vars(c), "text": describe_conflict(c, names)} for c in found]


@blp.route("/programmes.ics")
class ProgrammesIcs(MethodView):
    @blp.arguments(AreaQuery, location="query", as_kwargs=True)
    @blp.fails(422)
    def get(self, area: str | None = None) -> flask.Response:
        """Export programmes as .ics

        One VCALENDAR (text/calendar) with the events of every programme the caller sees, or of those
        playing in `area`: for any calendar tool.
        """
        area = _area_filter(area)
        with runtime().db.session() as s:
            text = export_ics(editing.listed(s, actor(), area))
        return flask.Response(text, mimetype="text/calendar",
                              headers={"Content-Disposition": 'attachment; filename="programmes.ics"'})


@blp.route("/programmes/import")
class ProgrammeImport(MethodView):
    @blp.arguments(ImportSchema)
    @blp.response(201, ImportedSchema)
    @blp.fails(403, 409)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Import programmes from .ics

        One programme per event series (UID), all or none: what plays and where comes from `per_uid`
        for that UID, else from `common`. The same checks as creating each (fields named under
        common.* or per_uid.<UID>.*); bad iCalendar is refused naming the reason (field ics).
        """
        saved = editing.import_calendar(runtime(), actor(), data["ics"], data.get("common"), data["per_uid"],
                                        data.get("overlap", "refuse"), data.get("precedence"))
        return {"programmes": [programme_dict(p, saved) for p in saved.programmes]}


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
