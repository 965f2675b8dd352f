"""Devices and groups: create, update, import from CSV or YAML. The API and the CLI both
write through here, so a device is validated the same way whichever door it came in by."""
from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub.addresses import AddressError, AddressPolicy, check_address, default_policy
from hub.fleet.areas import AreaRow, import_areas
from hub.store.db import utcnow
from hub.store.models import Area, Device, DeviceStatus, DeviceTag, Group, GroupMember
from hub.store.statistics_tables import REMOVED, DeviceStateLog
from hub.plugins import Plugins
from hub.schemas.registry import AreaSchema, DeviceSchema, GroupSchema

# Device kinds that can make use of each capability; a vendor's declared set is narrowed
# by kind when a device does not list its own.
_KIND_PREFIXES = {"speaker": ("audio.", "power.", "status.", "security."),
                  "led_board": ("led.", "power.", "status.", "security.")}


class RegistryError(ValueError):
    """Bad registry data. `where` names the row (file:line or id) and `field` the field."""

    def __init__(self, where: str, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{where}: {field}: {message}")
        self.where, self.field, self.message, self.status = where, field, message, status


def default_capabilities(plugins: Plugins, vendor: str, kind: str) -> list[str]:
    declared = plugins.vendors()[vendor].manifest.capabilities if vendor in plugins.vendors() else frozenset()
    prefixes = _KIND_PREFIXES[kind]
    return sorted(c for c in declared if c.startswith(prefixes))


def check_device_address(plugins: Plugins, vendor: str, address: str, where: str,
                         policy: AddressPolicy | None = None) -> None:
    """RegistryError (422, field `address`, naming the rule) unless the vendor's declared address
    form and the province's policy allow `address` (hub.addresses)."""
    cls = plugins.vendors().get(vendor)
    try:
        check_address(cls.manifest.address if cls else None, address, policy or default_policy())
    except AddressError as exc:
        raise RegistryError(where, "address", f"{exc} (rule: {exc.rule})") from None


def upsert_device(session: Session, plugins: Plugins, data: dict[str, Any], where: str = "",
                  policy: AddressPolicy | None = None) -> Device:
    """Create or replace a device from DeviceSchema().load output. `policy`: where devices may be
    (Runtime.address_policy(); the process's settings when left out)."""
    where = where or f"device {data['id']}"
    if session.get(Area, data["area_code"]) is None:
        raise RegistryError(where, "area_code", f"unknown area code {data['area_code']}")
    if data["vendor"] not in plugins.vendors():
        installed = ", ".join(sorted(plugins.vendors())) or "none"
        raise RegistryError(where, "vendor", f"no vendor plugin named {data['vendor']} (installed: {installed})")
    manifest = plugins.vendors()[data["vendor"]].manifest
    if data["kind"] not in manifest.device_kinds:
        raise RegistryError(where, "kind", f"vendor {data['vendor']} does not drive {data['kind']} devices")
    caps = data.get("capabilities")
    if caps is None:
        caps = default_capabilities(plugins, data["vendor"], data["kind"])
    else:
        beyond = sorted(set(caps) - manifest.capabilities)
        if beyond:
            raise RegistryError(where, "capabilities", f"vendor {data['vendor']} does not provide {', '.join(beyond)}")
    check_device_address(plugins, data["vendor"], data["address"], where, policy)
    clash = session.scalars(select(Device).where(Device.vendor == data["vendor"], Device.address == data["address"],
                                                 Device.id != data["id"])).first()
    if clash is not None:
        raise RegistryError(where, "address", f"address {data['address']} already belongs to device {clash.id}",
                            status=409)
    device = session.get(Device, data["id"])
    if device is None:
        device = Device(id=data["id"], created_at=utcnow())
        session.add(device)
        log_life(session, device.id, data["area_code"], "unknown", device.created_at)
    elif device.area_code != data["area_code"]:  # moved: its figures count in the new area from now on
        state = session.scalar(select(DeviceStatus.operating_state).where(DeviceStatus.device_id == device.id))
        log_life(session, device.id, data["area_code"], state or "unknown", utcnow())
    device.name = data.get("name") or ""
    device.vendor, device.model, device.kind = data["vendor"], data.get("model"), data["kind"]
    device.area_code, device.address = data["area_code"], data["address"]
    device.capabilities = sorted(caps)
    device.config = data.get("config") or {}
    device.admin_state = data.get("admin_state", "enabled")
    device.latitude, device.longitude = data.get("latitude"), data.get("longitude")
    device.tags = [DeviceTag(device_id=device.id, tag=t) for t in sorted(set(data.get("tags") or ()))]
    return device


def upsert_group(session: Session, data: dict[str, Any]) -> Group:
    if data.get("area_code") and session.get(Area, data["area_code"]) is None:
        raise RegistryError(f"group {data['id']}", "area_code", f"unknown area code {data['area_code']}")
    members = list(dict.fromkeys(data.get("devices") or ()))
    found = set(session.scalars(select(Device.id).where(Device.id.in_(members)))) if members else set()
    for m in members:
        if m not in found:
            raise RegistryError(f"group {data['id']}", "devices", f"unknown device {m}")
    group = session.get(Group, data["id"])
    if group is None:
        group = Group(id=data["id"])
        session.add(group)
    group.name, group.area_code = data["name"], data.get("area_code")
    session.execute(delete(GroupMember).where(GroupMember.group_id == group.id))
    session.flush()
    group.members = [GroupMember(group_id=group.id, device_id=m) for m in members]
    return group


# -- files ---------------------------------------------------------------------------------------
def read_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) pairs from a CSV or YAML file; `where` is file:line for error messages."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text) or []
        except yaml.YAMLError as exc:
            raise RegistryError(str(path), "file", f"not valid YAML: {exc}") from None
        if isinstance(data, dict):
            data = next(iter(data.values()), []) if len(data) == 1 else [data]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise RegistryError(str(path), "file", "expected a list of mappings")
        return [(f"{path}: item {i}", r) for i, r in enumerate(data, 1)]
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        out = []
        for row in reader:
            clean = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}
            out.append((f"{path}:{reader.line_num}", {k: v for k, v in clean.items() if v not in ("", None)}))
        return out
    raise RegistryError(str(path), "file", "expected a .csv, .yaml or .yml file")


def _listish(row: dict[str, Any], key: str, sep: str) -> None:
    if isinstance(row.get(key), str):
        row[key] = [p.strip() for p in row[key].split(sep) if p.strip()]


def import_area_file(session: Session, path: Path) -> int:
    rows = []
    for where, row in read_rows(path):
        try:
            a = AreaSchema().load({k: str(v) if v is not None else None for k, v in row.items()})
        except ValidationError as exc:
            field, msgs = next(iter(exc.messages.items()))
            raise RegistryError(where, field, "; ".join(map(str, msgs))) from None
        rows.append(AreaRow(a["code"], a["name"], a["type"], a.get("parent_code")))
    return import_areas(session, rows)


def import_device_file(session: Session, plugins: Plugins, path: Path, policy: AddressPolicy | None = None) -> int:
    """Import devices; CSV lists use ';' (tags "market;school"), config columns are `config.KEY`;
    `latitude` and `longitude` are WGS 84 degrees (both or neither; an empty cell is none)."""
    n = 0
    for where, row in read_rows(path):
        for key in ("tags", "capabilities"):
            _listish(row, key, ";")
        cfg = {k.split(".", 1)[1]: row.pop(k) for k in list(row) if k.startswith("config.")}
        if cfg:
            row.setdefault("config", {}).update(cfg)
        for key in ("id", "address", "area_code"):
            if key in row and not isinstance(row[key], str):
                row[key] = str(row[key])
        try:
            data = DeviceSchema().load(row)
        except ValidationError as exc:
            field, msgs = next(iter(exc.messages.items()))
            raise RegistryError(where, field, "; ".join(map(str, msgs if isinstance(msgs, list) else [msgs]))) from None
        upsert_device(session, plugins, data, where, policy)
        n += 1
    session.flush()
    return n


def log_life(session: Session, device_id: str, area_code: str | None, state: str, at: datetime) -> None:
    """A row of the device's life for statistics (hub.store.statistics_tables), which outlives it."""
    session.add(DeviceStateLog(device_id=device_id, area_code=area_code, at=at, state=state))


def remove_device(session: Session, device: Device) -> None:
    """Delete a device; its deliveries, as-run rows and life for statistics stay."""
    log_life(session, device.id, device.area_code, REMOVED, utcnow())
    session.delete(device)
