"""Target selector → devices. See hub/schemas/target.py for the selector's meaning."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, lazyload, selectinload

from hub.fleet.areas import AreaError, subtree_paths, under_any
from hub.geography import GeometryError, check_geometry
from hub.store.batching import chunks
from hub.store.models import Area, Device, DeviceTag, Group, GroupMember


class TargetError(ValueError):
    """The target names something that does not exist; `field` says where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _paths(session: Session, codes: list[str], field: str) -> list[str]:
    try:
        return list(subtree_paths(session, codes).values())
    except AreaError as exc:
        raise TargetError(field, str(exc)) from None


def _known(session: Session, model: Any, codes: list[str], field: str, what: str) -> None:
    found = set(session.scalars(select(model.id).where(model.id.in_(codes))))
    for c in codes:
        if c not in found:
            raise TargetError(field, f"unknown {what} {c}")


def _scope_ids(session: Session, sel: dict[str, Any], field: str) -> set[str]:
    ids: set[str] = set()
    if sel.get("areas"):
        paths = _paths(session, sel["areas"], f"{field}.areas")
        q = select(Device.id).join(Area, Device.area_code == Area.code).where(under_any(Area.path, paths))
        ids.update(session.scalars(q))
    if sel.get("devices"):
        _known(session, Device, sel["devices"], f"{field}.devices", "device")
        ids.update(sel["devices"])
    if sel.get("groups"):
        _known(session, Group, sel["groups"], f"{field}.groups", "group")
        ids.update(session.scalars(select(GroupMember.device_id).where(GroupMember.group_id.in_(sel["groups"]))))
    if sel.get("tags"):  # only in exclusions: a tag removes every device carrying it
        ids.update(session.scalars(select(DeviceTag.device_id).where(DeviceTag.tag.in_(sel["tags"]))))
    return ids


def devices_in(session: Session, polygons: Sequence[Any] = (), circles: Sequence[Any] = (),
               within_paths: Sequence[str] | None = None) -> list[str]:
    """Ids (sorted) of the devices whose coordinates lie in any of `polygons` (rings of
    (latitude, longitude)) or `circles` ((latitude, longitude, radius_km)), boundary included
    (hub.geography). `within_paths`: only devices in these area subtrees (an actor's
    `area_paths`); None: anywhere. Devices without coordinates are never inside.
    Raises hub.geography.GeometryError naming a malformed shape."""
    geometry = check_geometry(polygons, circles)
    if within_paths is not None and not within_paths:
        return []
    # The bounding boxes in SQL (the (latitude, longitude) index), the exact test on what is left
    boxes = [and_(Device.latitude.between(lat0, lat1), Device.longitude.between(lon0, lon1))
             for lat0, lat1, lon0, lon1 in geometry.boxes()]
    q = select(Device.id, Device.latitude, Device.longitude).where(or_(*boxes))
    if within_paths is not None:
        q = q.where(Device.area_code.in_(select(Area.code).where(under_any(Area.path, within_paths))))
    rows = session.execute(q).all()
    inside = geometry.contains([r[1] for r in rows], [r[2] for r in rows])
    return sorted(r[0] for r, hit in zip(rows, inside) if hit)


def _geometry_ids(session: Session, target: dict[str, Any], within_paths: Sequence[str] | None) -> set[str]:
    geo = target["geometry"]
    try:
        return set(devices_in(session, geo.get("polygons") or (), geo.get("circles") or (), within_paths))
    except GeometryError as exc:
        raise TargetError(f"target.geometry.{exc.field}", exc.message) from None


def resolve(session: Session, target: dict[str, Any], within_paths: Sequence[str] | None = None) -> list[Device]:
    """Devices the target selects, sorted by id. Raises TargetError for unknown references.
    `within_paths` (the sender's area paths; None when unrestricted) bounds a geometry given
    without areas, devices or groups; a named scope is checked against the sender by the caller."""
    scope_sel = {k: target.get(k) for k in ("areas", "devices", "groups")}
    ids = _scope_ids(session, scope_sel, "target")
    if target.get("geometry"):
        named = any(scope_sel.values())
        inside = _geometry_ids(session, target, None if named else within_paths)
        ids = ids & inside if named else inside  # with a named scope, geometry narrows it
    if target.get("exclude"):
        ids -= _scope_ids(session, target["exclude"], "target.exclude")
    if not ids:
        return []
    devices: list[Device] = []
    id_list = sorted(ids)
    want_tags = set(target.get("tags") or ())
    # Status is never read here and tags only when the target names some: loading them for
    # every selected device doubled a 10,000-device dispatch (bench/).
    opts = [lazyload(Device.status), selectinload(Device.tags) if want_tags else lazyload(Device.tags)]
    for chunk in chunks(id_list):  # stay under SQLite's bound-parameter limit
        q = select(Device).options(*opts).where(Device.id.in_(chunk))
        if target.get("kinds"):
            q = q.where(Device.kind.in_(target["kinds"]))
        if target.get("vendors"):
            q = q.where(Device.vendor.in_(target["vendors"]))
        devices.extend(session.scalars(q).unique())
    cap = target.get("capability")
    out = [d for d in devices
           if (not want_tags or want_tags <= set(d.tag_names)) and (cap is None or cap in (d.capabilities or ()))]
    return sorted(out, key=lambda d: d.id)
