"""Devices: the reader's area tree, the devices of an area filtered by state, kind and vendor, and
one device's page with its status, its status history (device_events) and its past deliveries."""
from __future__ import annotations

from typing import Any

import flask
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select

from hub.access.permissions import ANYONE
from hub.capabilities import DEVICE_KINDS
from hub.console.common import NavEntry, add_nav, console_blueprint, runtime
from hub.console.scope import area_tree, chosen_paths, devices_in, my_paths
from hub.fleet.health import OPERATING_STATES, shown_online
from hub.store.models import Area, Command, Delivery, Device, DeviceEvent, DeviceStatus

bp = console_blueprint("console_devices", __name__)

RULES = {"devices": {"GET": ANYONE},
         "device": {"GET": ANYONE}}

add_nav(NavEntry("devices", _l("Devices"), "console_devices.devices", order=20))

PAGE_SIZE = 50
HISTORY_SHOWN = 50
DELIVERIES_SHOWN = 50
DISABLED = "disabled"  # the state filter's value for devices an administrator switched off


def _filters() -> dict[str, str]:
    args = flask.request.args
    keep = {"state": (*OPERATING_STATES, DISABLED), "kind": DEVICE_KINDS}
    out = {k: args.get(k, "") for k in ("area", "state", "kind", "vendor", "q")}
    for key, allowed in keep.items():
        if out[key] not in allowed:
            out[key] = ""
    out["q"] = out["q"].strip()[:100]
    return out


def _page_number() -> int:
    try:
        return max(1, min(int(flask.request.args.get("page", "1")), 10**6))
    except ValueError:
        return 1


def _listing(s: Any, paths: tuple[str, ...] | None, f: dict[str, str]) -> Any:
    stmt = (select(Device, DeviceStatus).outerjoin(DeviceStatus, DeviceStatus.device_id == Device.id)
            .where(devices_in(paths)).order_by(Device.area_code, Device.id))
    state = func.coalesce(DeviceStatus.operating_state, OPERATING_STATES[0])
    if f["state"] == DISABLED:
        stmt = stmt.where(Device.admin_state != "enabled")
    elif f["state"]:
        stmt = stmt.where(state == f["state"], Device.admin_state == "enabled")
    if f["kind"]:
        stmt = stmt.where(Device.kind == f["kind"])
    if f["vendor"]:
        stmt = stmt.where(Device.vendor == f["vendor"])
    if f["q"]:
        like = f"%{f['q']}%"
        stmt = stmt.where(or_(Device.id.ilike(like), Device.name.ilike(like)))
    return stmt


@bp.get("/console/devices")
def devices() -> Any:
    f = _filters()
    page = _page_number()
    with runtime().db.session() as s:
        area, paths = chosen_paths(s, f["area"])
        mine = my_paths(s)
        counts = dict(s.execute(select(Device.area_code, func.count()).where(devices_in(mine))
                                .group_by(Device.area_code)).all())
        stmt = _listing(s, paths, f)
        total = s.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
        rows = s.execute(stmt.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
        vendors = list(s.scalars(select(Device.vendor).where(devices_in(mine)).distinct().order_by(Device.vendor)))
        names = dict(s.execute(select(Area.code, Area.name).where(Area.code.in_({d.area_code for d, _ in rows}))).all())
        return flask.render_template(
            "devices.html", tree=area_tree(s, counts), area=area, filters=f, rows=rows, area_names=names,
            total=total, page=page, pages=max(1, -(-total // PAGE_SIZE)), vendors=vendors,
            states=OPERATING_STATES, kinds=DEVICE_KINDS, disabled=DISABLED, shown_online=shown_online)


@bp.get("/console/devices/<device_id>")
def device(device_id: str) -> Any:
    with runtime().db.session() as s:
        dev = s.get(Device, device_id)
        mine = my_paths(s)
        if dev is None or not (mine is None or any(dev.area.path.startswith(p) for p in mine)):
            flask.abort(404)
        history = list(s.scalars(select(DeviceEvent).where(DeviceEvent.device_id == dev.id)
                                 .order_by(DeviceEvent.at.desc(), DeviceEvent.id.desc()).limit(HISTORY_SHOWN)))
        deliveries = s.execute(select(Delivery, Command).join(Command, Command.id == Delivery.command_id)
                               .where(Delivery.device_id == dev.id)
                               .order_by(Delivery.queued_at.desc(), Delivery.id.desc()).limit(DELIVERIES_SHOWN)).all()
        lineage = list(s.scalars(select(Area).where(Area.code.in_(_ancestors(dev.area.path))).order_by(Area.level)))
        return flask.render_template("device.html", dev=dev, st=dev.status, history=history, deliveries=deliveries,
                                     lineage=lineage, shown_online=shown_online)


def _ancestors(path: str) -> list[str]:
    """Codes along an area's path ("80/794/27694/" → 80, 794, 27694)."""
    return [p for p in path.split("/") if p]


__all__ = ["bp"]
