"""Device list pages read with plain row selects.

`GET /api/devices` answers 100 devices per page. Loading them as ORM objects (area joined, tags
and status each loaded with select-in) cost more CPU than the SQL itself (bench/: 100,000
devices); here one page is two selects of plain rows: the devices with their area's name and
status, then their tags. The dicts are exactly what `device_dict` gives for an ORM Device.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_smorest.pagination import PaginationParameters
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from hub.fleet.health import shown_online
from hub.schemas.status import STATUS_FIELDS
from hub.store.models import Area, Device, DeviceStatus, DeviceTag

# device_dict's keys, in its order, and the columns they come from
_DEVICE_COLUMNS = (Device.id, Device.name, Device.vendor, Device.model, Device.kind, Device.area_code,
                   Device.address, Device.capabilities, Device.config, Device.admin_state, Device.created_at,
                   Device.latitude, Device.longitude)
_STATUS_COLUMNS = tuple(getattr(DeviceStatus, k) for k in STATUS_FIELDS)
# Rows are unpacked by position, in this order.
_SELECT = (select(*_DEVICE_COLUMNS, Area.name, DeviceStatus.device_id, *_STATUS_COLUMNS)
           .join(Area, Device.area_code == Area.code, isouter=True)
           .join(DeviceStatus, DeviceStatus.device_id == Device.id, isouter=True))


def page_ids(session: Session, stmt: Select[Any], pp: PaginationParameters) -> list[str]:
    """As hub.api.common.page_of for a select of ids, run as Core: the ORM's result machinery
    cost as much as the SQL for 100 plain strings."""
    conn = session.connection()
    pp.item_count = conn.execute(select(func.count()).select_from(stmt.order_by(None).subquery())).scalar() or 0
    if pp.first_item >= pp.item_count:  # past the end (also keeps a huge page number out of SQL)
        return []
    return list(conn.execute(stmt.offset(pp.first_item).limit(pp.page_size)).scalars())


def _status(values: Sequence[Any]) -> dict[str, Any]:
    st = dict(zip(STATUS_FIELDS, values))
    st["online"] = shown_online(st["online"], st["operating_state"])
    return st


def device_pages(session: Session, ids: Sequence[str]) -> list[dict[str, Any]]:
    """The devices `ids` (one page, at most a few thousand) as API dicts, in the order given."""
    if not ids:
        return []
    conn = session.connection()  # Core execution: plain tuples, no ORM result machinery
    tags: dict[str, list[str]] = {}
    for device_id, tag in conn.execute(select(DeviceTag.device_id, DeviceTag.tag).where(DeviceTag.device_id.in_(ids))):
        tags.setdefault(device_id, []).append(tag)
    by_id: dict[str, dict[str, Any]] = {}
    n = len(STATUS_FIELDS)
    for (did, name, vendor, model, kind, area_code, address, caps, config, admin_state, created_at, lat, lon,
         area_name, st_id, *st) in conn.execute(_SELECT.where(Device.id.in_(ids))):
        by_id[did] = {"id": did, "name": name, "vendor": vendor, "model": model, "kind": kind,
                      "area_code": area_code, "area_name": area_name, "address": address,
                      "capabilities": list(caps or ()), "tags": sorted(tags.get(did, ())), "config": config or {},
                      "admin_state": admin_state, "latitude": lat, "longitude": lon,
                      "status": None if st_id is None else _status(st[:n]),
                      "created_at": created_at}
    return [by_id[i] for i in ids if i in by_id]
