"""Delivery rows that name their device and its commune, read in a fixed number of selects.

An officer reading "spk-27694-1: expired" needs to know which loudspeaker that is and where:
each row carries its device's name, address, vendor and kind and the commune it stands in (the
device's area, or the nearest commune above a village). One page is read with one select joining
deliveries to devices and areas, and one select of the communes the page's area paths name — two
statements however many rows (tests/test_delivery_rows.py counts them).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from flask_smorest.pagination import PaginationParameters
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from hub.store.batching import chunks
from hub.store.models import Area, Command, Delivery, Device

COMMUNE = "commune"  # the area type a delivery row names (hub.fleet.areas.official_rows writes it)

# Rows are unpacked by position, in this order.
DELIVERY_COLUMNS = (Delivery.id, Delivery.command_id, Delivery.device_id, Delivery.vendor, Delivery.state,
                    Delivery.reason, Delivery.attempts, Delivery.queued_at, Delivery.sent_at, Delivery.finished_at,
                    Delivery.result)
_DEVICE_COLUMNS = (Device.id, Device.name, Device.address, Device.vendor, Device.kind, Device.area_code, Area.name,
                   Area.path)
_COMMAND_COLUMNS = (Command.verb, Command.priority, Command.issuer, Command.start_at)


def select_rows(*where: Any, with_command: bool = False) -> Select[Any]:
    """Deliveries with their device and its area (outer joins: a removed device leaves its rows)
    and, `with_command`, the command's verb, class, issuer and start."""
    stmt = select(*DELIVERY_COLUMNS, *_DEVICE_COLUMNS, *(_COMMAND_COLUMNS if with_command else ()))
    stmt = (stmt.join(Device, Device.id == Delivery.device_id, isouter=True)
            .join(Area, Area.code == Device.area_code, isouter=True))
    if with_command:
        stmt = stmt.join(Command, Command.id == Delivery.command_id)
    return stmt.where(*where)


def communes_of(session: Session, paths: Iterable[str | None]) -> dict[str, dict[str, str]]:
    """For each area path (`/80/794/27694/`), the nearest commune on it — itself or above — as
    {code, name}; paths with none are left out. One select per thousand distinct codes."""
    paths = {p for p in paths if p}
    codes = sorted({c for p in paths for c in p.strip("/").split("/") if c})
    found: dict[str, str] = {}
    for chunk in chunks(codes):
        for code, name in session.execute(select(Area.code, Area.name).where(Area.code.in_(chunk),
                                                                             Area.type == COMMUNE)):
            found[code] = name
    out: dict[str, dict[str, str]] = {}
    for path in paths:
        for code in reversed(path.strip("/").split("/")):
            if code in found:
                out[path] = {"code": code, "name": found[code]}
                break
    return out


def row_dicts(session: Session, rows: Sequence[Any], with_command: bool = False) -> list[dict[str, Any]]:
    """Rows of `select_rows` as API dicts, in their order."""
    n = len(DELIVERY_COLUMNS)
    communes = communes_of(session, (r[n + len(_DEVICE_COLUMNS) - 1] for r in rows))
    out = []
    for r in rows:
        (_id, command_id, device_id, vendor, state, reason, attempts, queued_at, sent_at, finished_at,
         result) = r[:n]
        dev_id, name, address, dev_vendor, kind, area_code, area_name, path = r[n:n + len(_DEVICE_COLUMNS)]
        row = {"command_id": command_id, "device_id": device_id, "vendor": vendor, "state": state, "reason": reason,
               "attempts": attempts, "queued_at": queued_at, "sent_at": sent_at, "finished_at": finished_at,
               "result": result,
               "device": None if dev_id is None else {"name": name, "address": address, "vendor": dev_vendor,
                                                      "kind": kind, "area_code": area_code, "area_name": area_name},
               "commune": communes.get(path) if path else None}
        if with_command:
            verb, priority, issuer, start_at = r[n + len(_DEVICE_COLUMNS):]
            row.update(verb=verb, priority=priority, issuer=issuer, start_at=start_at)
        out.append(row)
    return out


def page_rows(session: Session, stmt: Select[Any], pp: PaginationParameters) -> list[Any]:
    """One page of a `select_rows` statement as rows; sets the total for the X-Pagination header."""
    pp.item_count = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    if pp.first_item >= pp.item_count:
        return []
    return list(session.execute(stmt.offset(pp.first_item).limit(pp.page_size)))
