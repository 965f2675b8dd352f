"""Areas: the administrative tree (province → commune, or older three-level data, villages)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from hub.api.common import (HubBlueprint, QueryArgs, audit, fail, in_scope, not_found, page_of, path_allowed, require,
                            runtime, scope, taken)
from hub.api.schemas import AreaOutSchema
from hub.fleet.areas import AreaError, AreaRow, import_areas, official_codes
from hub.store.models import Area
from hub.schemas.registry import AreaSchema
from hub.access.permissions import ANYONE, ADMINISTRATORS
from hub.hookspecs import hookimpl

blp = HubBlueprint("areas", __name__, url_prefix="/api/areas",
                   description="Administrative units (đơn vị hành chính) and villages; each has a path "
                               "so that a code stands for its whole subtree.")

# Who may call each view (hook register_blueprints; hub.access.permissions refuses the rest).
RULES = {"Areas": {"GET": ANYONE, "POST": ADMINISTRATORS},
         "AreaByCode": {"GET": ANYONE}}


class AreaQuery(QueryArgs):
    parent = ma.fields.Str(metadata={"description": "Only the direct children of this area code"})
    type = ma.fields.Str(metadata={"description": "province, district, commune, village…"})
    q = ma.fields.Str(validate=ma.validate.Length(min=1, max=200),
                      metadata={"description": "Part of the name (case-insensitive for ASCII), or the exact code"})


def _with_children(session: Session, areas: list[Area]) -> list[dict[str, Any]]:
    codes = [a.code for a in areas]
    child = aliased(Area)
    counts = dict(session.execute(select(child.parent_code, func.count()).where(child.parent_code.in_(codes))
                                  .group_by(child.parent_code)).all()) if codes else {}
    return [{"code": a.code, "name": a.name, "type": a.type, "parent_code": a.parent_code, "level": a.level,
             "path": a.path, "children": counts.get(a.code, 0)} for a in areas]


def _visible(session: Session, code: str) -> Area:
    area = session.get(Area, code)
    paths = scope(session)
    if area is None or (paths is not None and not any(area.path.startswith(p) for p in paths)):
        not_found("area", code)
    return area


@blp.route("")
class Areas(MethodView):
    @blp.arguments(AreaQuery, location="query", as_kwargs=True)
    @blp.response(200, AreaOutSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters, parent: str | None = None,
            type: str | None = None, q: str | None = None) -> list[dict[str, Any]]:  # noqa: A002
        """List areas

        Danh sách địa bàn. Areas the caller may see, ordered by their place in the tree.
        """
        with runtime().db.session() as s:
            stmt = select(Area).order_by(Area.path)
            cond = in_scope(Area.path, scope(s))
            if cond is not None:
                stmt = stmt.where(cond)
            if parent is not None:
                stmt = stmt.where(Area.parent_code == parent)
            if type is not None:
                stmt = stmt.where(Area.type == type)
            if q is not None:
                stmt = stmt.where(or_(Area.name.icontains(q, autoescape=True), Area.code == q))
            return _with_children(s, page_of(s, stmt, pagination_parameters))

    @blp.arguments(AreaSchema)
    @blp.response(201, AreaOutSchema)
    @blp.fails(403, 409)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create an area

        Thêm địa bàn. The parent must exist; a restricted caller may only add areas below its own.
        """
        with runtime().db.session() as s:
            existing = s.get(Area, data["code"])
            if existing is not None:
                taken(s, "area", data["code"], path_allowed(existing.path, scope(s)), field="code")
            parent = data.get("parent_code")
            if parent is not None:
                ppath = s.scalar(select(Area.path).where(Area.code == parent))
                if ppath is None:
                    fail(422, f"unknown parent_code {parent}", field="parent_code")
                require(s, [(f"area {data['code']}", f"{ppath}{data['code']}/")], "parent_code")
            elif scope(s) is not None:
                fail(403, "only an unrestricted administrator may add a top-level area", field="parent_code")
            if scope(s) is not None and data["code"] in official_codes():
                # Such an area would be moved, with its subtree and the accounts holding it, by the
                # next `hub import areas --official`: the official list is the import's alone.
                fail(422, f"{data['code']} is an official administrative unit code (vietnam-provinces list); "
                          f"only the official import adds those: give a village a code of its own, such as "
                          f"{parent}-T1", field="code")
            try:
                import_areas(s, [AreaRow(data["code"], data["name"], data["type"], parent)])
            except AreaError as exc:
                fail(422, str(exc), field="code")
            audit(s, "area.create", "area", data["code"], {"name": data["name"], "type": data["type"],
                                                          "parent_code": parent}, areas=[data["code"]])
            return _with_children(s, [s.get(Area, data["code"])])[0]


@blp.route("/<string:code>")
class AreaByCode(MethodView):
    @blp.response(200, AreaOutSchema)
    @blp.fails(404)
    def get(self, code: str) -> dict[str, Any]:
        """Show an area

        One area with its number of direct children.
        """
        with runtime().db.session() as s:
            return _with_children(s, [_visible(s, code)])[0]


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
