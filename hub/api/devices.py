"""Devices: loudspeaker clusters and LED boards, each driven by one vendor plugin."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.api.common import (HubBlueprint, QueryArgs, area_path, audit, fail, in_scope, not_found,
                            path_allowed, require, runtime, scope, taken)
from hub.api.device_history import KINDS, history_page
from hub.api.device_rows import device_pages, page_ids
from hub.api.schemas import (AdminStateSchema, DeviceOutSchema, DeviceStatusOutSchema, DeviceUpdateSchema,
                             HistoryEntrySchema)
from hub.schemas.fields import Instant
from hub.fleet.areas import under_any
from hub.capabilities import DEVICE_KINDS
from hub.fleet.health import shown_online
from hub.store.models import Area, Device, DeviceStatus, DeviceTag
from hub.fleet.registry import check_device_address, remove_device, upsert_device
from hub.schemas.registry import DeviceSchema
from hub.access.permissions import ANYONE, ADMINISTRATORS
from hub.hookspecs import hookimpl
from hub.schemas.status import STATUS_FIELDS

blp = HubBlueprint("devices", __name__, url_prefix="/api/devices",
                   description="Loudspeaker clusters (cụm loa) and LED boards (bảng LED), each bound to an "
                               "area and driven by a vendor plugin.")

# Who may call each view (hook register_blueprints; hub.access.permissions refuses the rest).
RULES = {"Devices": {"GET": ANYONE, "POST": ADMINISTRATORS},
         "DeviceById": {"GET": ANYONE, "PUT": ADMINISTRATORS, "PATCH": ADMINISTRATORS, "DELETE": ADMINISTRATORS},
         "DeviceStatusView": {"GET": ANYONE},
         "DeviceHistory": {"GET": ANYONE}}


class DeviceQuery(QueryArgs):
    area = ma.fields.Str(metadata={"description": "Area code: devices anywhere in its subtree"})
    kind = ma.fields.Str(validate=ma.validate.OneOf(DEVICE_KINDS))
    vendor = ma.fields.Str(metadata={"description": "Vendor plugin name"})
    tag = ma.fields.List(ma.fields.Str(), metadata={"description": "Repeat to require several tags"})
    online = ma.fields.Bool(metadata={"description": "A device that never reported counts as offline"})
    admin_state = ma.fields.Str(validate=ma.validate.OneOf(["enabled", "disabled"]))


class HistoryQuery(QueryArgs):
    since = Instant(data_key="from", metadata={"description": "At or after this instant (any offset)"})
    until = Instant(data_key="to", metadata={"description": "Before this instant (any offset)"})
    kind = ma.fields.List(ma.fields.Str(validate=ma.validate.OneOf(KINDS)),
                          metadata={"description": "status or delivery; repeat for both (the default)"})

    @ma.validates_schema
    def _range(self, data: dict[str, Any], **_: Any) -> None:
        if "since" in data and "until" in data and data["until"] <= data["since"]:
            raise ma.ValidationError("must be later than from", field_name="to")


def status_dict(st: DeviceStatus | None) -> dict[str, Any] | None:
    if st is None:
        return None
    out = {k: getattr(st, k) for k in STATUS_FIELDS}
    out["online"] = shown_online(st.online, st.operating_state)
    return out


def device_dict(d: Device) -> dict[str, Any]:
    return {"id": d.id, "name": d.name, "vendor": d.vendor, "model": d.model, "kind": d.kind,
            "area_code": d.area_code, "area_name": d.area.name if d.area else None, "address": d.address,
            "capabilities": list(d.capabilities or ()), "tags": d.tag_names, "config": d.config or {},
            "admin_state": d.admin_state, "latitude": d.latitude, "longitude": d.longitude,
            "status": status_dict(d.status), "created_at": d.created_at}


def visible_device(session: Session, device_id: str) -> Device:
    """The device if it exists and lies in the caller's areas; 404 otherwise (reads are filtered)."""
    device = session.get(Device, device_id)
    if device is None or not path_allowed(device.area.path, scope(session)):
        not_found("device", device_id)
    return device


def _check_address(session: Session, data: dict[str, Any]) -> None:
    """409 without the other device's id when the address is held by a device the caller cannot
    see (hub.fleet.registry names the holder, which is right only for a device in the caller's areas)."""
    clash = session.scalars(select(Device).where(Device.vendor == data["vendor"], Device.address == data["address"],
                                                 Device.id != data["id"])).first()
    if clash is not None and not path_allowed(clash.area.path, scope(session)):
        fail(409, f"address {data['address']} is already in use by another device of vendor {data['vendor']}",
             field="address")


def _check_area(session: Session, code: str) -> None:
    """403 when the area exists and lies outside the caller's areas (an unknown code is the registry's 422)."""
    path = area_path(session, code)
    if path is not None:
        require(session, [(f"area {code}", path)], "area_code")


@blp.route("")
class Devices(MethodView):
    @blp.arguments(DeviceQuery, location="query", as_kwargs=True)
    @blp.response(200, DeviceOutSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters, **filters: Any) -> list[dict[str, Any]]:
        """List devices

        Danh sách thiết bị. Devices in the caller's areas, by id, optionally narrowed by area subtree,
        kind, vendor, tags, presence and administrative state.
        """
        with runtime().db.session() as s:
            # The page's ids first, then its rows (hub.api.device_rows): the filters and the sort
            # run on ids from the devices' (area_code, id) index, and only 100 rows are read whole.
            stmt = select(Device.id).join(Area, Device.area_code == Area.code).order_by(Device.id)
            cond = in_scope(Area.path, scope(s))
            if cond is not None:
                stmt = stmt.where(cond)
            if "area" in filters:
                path = area_path(s, filters["area"])
                if path is None:
                    fail(422, f"unknown area code {filters['area']}", field="area", location="query")
                # By area_code through its index, not by the joined path: SQLite otherwise walks every
                # device in id order to find one commune's (bench/: 100,000 devices)
                stmt = stmt.where(Device.area_code.in_(select(Area.code).where(under_any(Area.path, [path]))))
            for key in ("kind", "vendor", "admin_state"):
                if key in filters:
                    stmt = stmt.where(getattr(Device, key) == filters[key])
            for tag in dict.fromkeys(filters.get("tag") or ()):
                stmt = stmt.where(Device.id.in_(select(DeviceTag.device_id).where(DeviceTag.tag == tag)))
            if "online" in filters:
                online = select(DeviceStatus.device_id).where(DeviceStatus.online.is_(True),
                                                              DeviceStatus.operating_state.is_distinct_from("offline"))
                stmt = stmt.where(Device.id.in_(online) if filters["online"] else Device.id.not_in(online))
            return device_pages(s, page_ids(s, stmt, pagination_parameters))

    @blp.arguments(DeviceSchema)
    @blp.response(201, DeviceOutSchema)
    @blp.fails(403, 409)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Register a device

        Thêm thiết bị. The vendor plugin must be installed and drive this kind of device;
        capabilities default to what the plugin declares for the kind.
        """
        rt = runtime()
        with rt.db.session() as s:
            existing = s.get(Device, data["id"])
            if existing is not None:
                taken(s, "device", data["id"], path_allowed(existing.area.path, scope(s)))
            _check_area(s, data["area_code"])
            _check_address(s, data)
            device = upsert_device(s, rt.plugins, data, policy=rt.address_policy())
            s.flush()
            audit(s, "device.create", "device", device.id, {"area_code": device.area_code, "vendor": device.vendor},
                  areas=[device.area_code])
            s.flush()
            s.refresh(device)
            return device_dict(device)


@blp.route("/<string:device_id>")
class DeviceById(MethodView):
    @blp.response(200, DeviceOutSchema)
    @blp.fails(404)
    def get(self, device_id: str) -> dict[str, Any]:
        """Show a device

        One device with its last reported status.
        """
        with runtime().db.session() as s:
            return device_dict(visible_device(s, device_id))

    @blp.arguments(DeviceUpdateSchema)
    @blp.response(200, DeviceOutSchema)
    @blp.fails(403, 404, 409)
    def put(self, data: dict[str, Any], device_id: str) -> dict[str, Any]:
        """Replace a device

        Sửa thiết bị. Every field is replaced; fields left out take their defaults.
        """
        if data.get("id") not in (None, device_id):
            fail(422, f"must be {device_id}, the id in the URL", field="id")
        data["id"] = device_id
        rt = runtime()
        with rt.db.session() as s:
            device = visible_device(s, device_id)
            _check_area(s, data["area_code"])
            _check_address(s, data)
            before = device.area_code
            device = upsert_device(s, rt.plugins, data, policy=rt.address_policy())
            s.flush()
            audit(s, "device.update", "device", device.id, {"area_code": device.area_code, "was_area": before},
                  areas=[before, device.area_code])
            s.flush()
            s.refresh(device)
            return device_dict(device)

    @blp.arguments(AdminStateSchema)
    @blp.response(200, DeviceOutSchema)
    @blp.fails(403, 404)
    def patch(self, data: dict[str, Any], device_id: str) -> dict[str, Any]:
        """Enable or disable a device

        Bật/tắt thiết bị. A disabled device stays registered but every new command to it fails at once.
        """
        rt = runtime()
        with rt.db.session() as s:
            device = visible_device(s, device_id)
            if data["admin_state"] == "enabled":  # a row stored by an older release was never checked
                check_device_address(rt.plugins, device.vendor, device.address, f"device {device.id}",
                                     rt.address_policy())
            device.admin_state = data["admin_state"]
            audit(s, f"device.{data['admin_state'].removesuffix('d')}", "device", device.id,
                  areas=[device.area_code])
            s.flush()
            return device_dict(device)

    @blp.response(204)
    @blp.fails(403, 404)
    def delete(self, device_id: str) -> None:
        """Remove a device

        Xoá thiết bị. Its group memberships go with it; past deliveries stay in the history.
        """
        with runtime().db.session() as s:
            device = visible_device(s, device_id)
            remove_device(s, device)
            audit(s, "device.delete", "device", device_id, {"area_code": device.area_code}, areas=[device.area_code])


@blp.route("/<string:device_id>/status")
class DeviceStatusView(MethodView):
    @blp.response(200, DeviceStatusOutSchema)
    @blp.fails(404)
    def get(self, device_id: str) -> dict[str, Any]:
        """Show a device's status

        Trạng thái thiết bị. What the device last reported (normalised across vendors);
        404 when it never reported.
        """
        with runtime().db.session() as s:
            device = visible_device(s, device_id)
            st = status_dict(device.status)
            if st is None:
                fail(404, f"device {device_id} has not reported its status yet", field="id", location="path")
            return st


@blp.route("/<string:device_id>/history")
class DeviceHistory(MethodView):
    @blp.arguments(HistoryQuery, location="query", as_kwargs=True)
    @blp.response(200, HistoryEntrySchema(many=True))
    @blp.paginate()
    @blp.fails(404)
    def get(self, pagination_parameters: PaginationParameters, device_id: str, since: Any = None,
            until: Any = None, kind: list[str] | None = None) -> list[dict[str, Any]]:
        """Show a device's history

        Lịch sử thiết bị, newest first: its operating-state transitions (online, degraded, offline,
        with the reason) and its deliveries (the command's verb and class, the delivery's state,
        reason and times), optionally between from and to. 404 for a device outside the caller's areas.
        """
        with runtime().db.session() as s:
            device = visible_device(s, device_id)
            return history_page(s, device.id, pagination_parameters, since, until, tuple(kind or KINDS))


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)


__all__ = ["blp", "device_dict", "visible_device"]
