"""The areas a signed-in reader may see, as SQL conditions and as the tree the pages show and pick from.

The same rule as the API's (hub.api.common.scope): an account sees its areas' subtrees and nothing
else; an unrestricted one (areas None) sees every area.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import flask
from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.orm import Session

from hub.console.common import actor
from hub.fleet.areas import under_any
from hub.store.models import Area, Command, Delivery, Device

MAX_TREE_AREAS = 5000  # a province with its villages; beyond that the picker would not be usable anyway


def my_paths(session: Session) -> tuple[str, ...] | None:
    """Paths of the reader's subtrees (None: every area), once per request."""
    cached = flask.g.get("_console_paths", ...)
    if cached is ...:
        cached = actor().area_paths(session)
        flask.g._console_paths = cached
    return cached


def path_condition(column: Any, paths: tuple[str, ...] | list[str] | None) -> ColumnElement[bool]:
    if paths is None:
        return true()
    return under_any(column, list(paths)) if paths else false()


def devices_in(paths: tuple[str, ...] | list[str] | None) -> ColumnElement[bool]:
    """SQL condition on Device: it lies in one of `paths` (None: anywhere)."""
    if paths is None:
        return true()
    return Device.area_code.in_(select(Area.code).where(path_condition(Area.path, paths)))


def command_reaches(paths: tuple[str, ...] | list[str] | None) -> ColumnElement[bool]:
    """SQL condition on Command: one of its deliveries is for a device in `paths`."""
    if paths is None:
        return true()
    return exists().where(Delivery.command_id == Command.id,
                          Delivery.device_id.in_(select(Device.id).where(devices_in(paths))))


def chosen_paths(session: Session, code: str | None) -> tuple[Area | None, tuple[str, ...] | None]:
    """The area a page was asked about, if the reader may see it, and the paths to look in: that
    area's subtree, or all the reader's areas."""
    mine = my_paths(session)
    if code:
        area = session.get(Area, code)
        if area is not None and (mine is None or any(area.path.startswith(p) for p in mine)):
            return area, (area.path,)
    return None, mine


@dataclass
class TreeNode:
    area: Area
    children: list[TreeNode] = field(default_factory=list)
    devices: int = 0  # in its whole subtree


def visible_areas(session: Session) -> list[Area]:
    mine = my_paths(session)
    return list(session.scalars(select(Area).where(path_condition(Area.path, mine))
                                .order_by(Area.path).limit(MAX_TREE_AREAS)))


def area_tree(session: Session, device_counts: dict[str, int] | None = None) -> list[TreeNode]:
    """The reader's areas as a forest (their own areas at the roots), each with its devices counted."""
    nodes = {a.code: TreeNode(a) for a in visible_areas(session)}
    roots: list[TreeNode] = []
    for node in nodes.values():  # by path: a parent comes before its children
        parent = nodes.get(node.area.parent_code or "")
        (parent.children if parent else roots).append(node)
    if device_counts:
        for node in sorted(nodes.values(), key=lambda n: -n.area.level):
            node.devices += device_counts.get(node.area.code, 0)
            parent = nodes.get(node.area.parent_code or "")
            if parent is not None:
                parent.devices += node.devices
    return roots


def visible_command(session: Session, command_id: str) -> Command | None:
    """A command the reader issued or that reaches its areas (as the API shows it), else None."""
    from hub.delivery.dispatch import issued_by

    cmd = session.get(Command, command_id)
    if cmd is None:
        return None
    mine = my_paths(session)
    seen = session.scalar(select(exists().where(Command.id == cmd.id,
                                                or_(issued_by(session, actor()), command_reaches(mine)))))
    return cmd if seen else None


def sees_all_of(session: Session, cmd: Command) -> bool:
    """The issuer (or an unrestricted reader) sees every delivery of a command; others those in their areas."""
    from hub.delivery.dispatch import issued_by

    if my_paths(session) is None:
        return True
    return bool(session.scalar(select(exists().where(and_(Command.id == cmd.id, issued_by(session, actor()))))))


__all__ = ["TreeNode", "area_tree", "chosen_paths", "command_reaches", "devices_in", "my_paths", "path_condition",
           "sees_all_of", "visible_areas", "visible_command"]
