"""Groups: named sets of devices (a market's loudspeakers, a school's boards) to target together."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import and_, exists, not_, or_, select
from sqlalchemy.orm import Session

from hub.api.common import (HubBlueprint, QueryArgs, area_path, audit, fail, in_scope, not_found, page_of,
                            require, runtime, scope, taken)
from hub.api.schemas import GroupUpdateSchema
from hub.store.models import Area, Device, Group, GroupMember
from hub.fleet.registry import upsert_group
from hub.schemas.registry import GroupSchema
from hub.access.permissions import ANYONE, GROUP_MANAGERS
from hub.hookspecs import hookimpl

blp = HubBlueprint("groups", __name__, url_prefix="/api/groups",
                   description="Named sets of devices (nhóm thiết bị), targeted together by commands.")

# Who may call each view (hook register_blueprints; hub.access.permissions refuses the rest).
RULES = {"Groups": {"GET": ANYONE, "POST": GROUP_MANAGERS},
         "GroupById": {"GET": ANYONE, "PUT": GROUP_MANAGERS, "DELETE": GROUP_MANAGERS}}


class GroupQuery(QueryArgs):
    area = ma.fields.Str(metadata={"description": "Only groups attached to this area code"})
    device = ma.fields.Str(metadata={"description": "Only groups that contain this device"})


def group_dict(g: Group) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "area_code": g.area_code, "devices": sorted(m.device_id for m in g.members)}


def _visible_condition(paths: tuple[str, ...]) -> Any:
    """A restricted caller sees a group whose area and every member lie in its areas (and that has
    at least one of them: an empty group without an area belongs to nobody in particular)."""
    member_outside = exists(select(GroupMember.device_id)
                            .join(Device, Device.id == GroupMember.device_id)
                            .join(Area, Area.code == Device.area_code)
                            .where(GroupMember.group_id == Group.id, not_(in_scope(Area.path, paths))))
    area_ok = or_(Group.area_code.is_(None),
                  Group.area_code.in_(select(Area.code).where(in_scope(Area.path, paths))))
    anchored = or_(Group.area_code.is_not(None), exists(select(GroupMember.device_id)
                                                      .where(GroupMember.group_id == Group.id)))
    return and_(not_(member_outside), area_ok, anchored)


def _visible_group(session: Session, group_id: str) -> Group:
    paths = scope(session)
    stmt = select(Group).where(Group.id == group_id)
    if paths is not None:
        stmt = stmt.where(_visible_condition(paths))
    group = session.scalars(stmt).first()
    if group is None:
        not_found("group", group_id)
    return group


def _areas_of(session: Session, group: Group) -> list[str]:
    """Codes of the group's area and of its members' areas: what an audit reader needs to see it."""
    members = [m.device_id for m in group.members]
    codes = set(session.scalars(select(Device.area_code).where(Device.id.in_(members)))) if members else set()
    if group.area_code:
        codes.add(group.area_code)
    return sorted(codes)


def _check_write(session: Session, data: dict[str, Any]) -> None:
    """403 unless the group's area and every member device lie in the caller's areas."""
    if scope(session) is None:
        return
    checks: list[tuple[str, str]] = []
    if data.get("area_code"):
        path = area_path(session, data["area_code"])
        if path is not None:
            checks.append((f"area {data['area_code']}", path))
    require(session, checks, "area_code")
    members = list(dict.fromkeys(data.get("devices") or ()))
    rows = session.execute(select(Device.id, Area.path).join(Area, Area.code == Device.area_code)
                           .where(Device.id.in_(members))).all() if members else []
    require(session, [(f"device {did}", path) for did, path in rows], "devices")
    if not data.get("area_code") and not members:
        fail(403, "a restricted caller's group needs an area or member devices in its areas", field="area_code")


@blp.route("")
class Groups(MethodView):
    @blp.arguments(GroupQuery, location="query", as_kwargs=True)
    @blp.response(200, GroupSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters, area: str | None = None,
            device: str | None = None) -> list[dict[str, Any]]:
        """List groups

        Danh sách nhóm. Groups whose area and members lie in the caller's areas.
        """
        with runtime().db.session() as s:
            stmt = select(Group).order_by(Group.id)
            paths = scope(s)
            if paths is not None:
                stmt = stmt.where(_visible_condition(paths))
            if area is not None:
                stmt = stmt.where(Group.area_code == area)
            if device is not None:
                stmt = stmt.where(Group.id.in_(select(GroupMember.group_id).where(GroupMember.device_id == device)))
            return [group_dict(g) for g in page_of(s, stmt, pagination_parameters)]

    @blp.arguments(GroupSchema)
    @blp.response(201, GroupSchema)
    @blp.fails(403, 409)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a group

        Tạo nhóm. Every member must be a registered device.
        """
        with runtime().db.session() as s:
            if s.get(Group, data["id"]) is not None:
                paths = scope(s)
                visible = paths is None or s.scalar(select(Group.id).where(Group.id == data["id"],
                                                                           _visible_condition(paths))) is not None
                taken(s, "group", data["id"], visible)
            _check_write(s, data)
            group = upsert_group(s, data)
            s.flush()
            audit(s, "group.create", "group", group.id, {"devices": len(group.members)},
                  areas=_areas_of(s, group))
            return group_dict(group)


@blp.route("/<string:group_id>")
class GroupById(MethodView):
    @blp.response(200, GroupSchema)
    @blp.fails(404)
    def get(self, group_id: str) -> dict[str, Any]:
        """Show a group"""
        with runtime().db.session() as s:
            return group_dict(_visible_group(s, group_id))

    @blp.arguments(GroupUpdateSchema)
    @blp.response(200, GroupSchema)
    @blp.fails(403, 404)
    def put(self, data: dict[str, Any], group_id: str) -> dict[str, Any]:
        """Replace a group

        Sửa nhóm. Name, area and the full member list are replaced.
        """
        if data.get("id") not in (None, group_id):
            fail(422, f"must be {group_id}, the id in the URL", field="id")
        data["id"] = group_id
        with runtime().db.session() as s:
            before = _areas_of(s, _visible_group(s, group_id))
            _check_write(s, data)
            group = upsert_group(s, data)
            s.flush()
            audit(s, "group.update", "group", group.id, {"devices": len(group.members)},
                  areas=sorted(set(before) | set(_areas_of(s, group))))
            return group_dict(group)

    @blp.response(204)
    @blp.fails(403, 404)
    def delete(self, group_id: str) -> None:
        """Remove a group

        Xoá nhóm. The devices stay registered.
        """
        with runtime().db.session() as s:
            group = _visible_group(s, group_id)
            areas = _areas_of(s, group)
            s.delete(group)
            audit(s, "group.delete", "group", group_id, areas=areas)


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
