"""A device's history: its operating-state transitions (device_events) and its deliveries, one
timeline, newest first, paged in SQL.

The page is chosen on a UNION ALL of (kind, id, time) from both tables, through their
(device_id, …) indexes; then the page's rows are read whole — a fixed number of selects per page.
A delivery's time is when the hub queued it for the device (`queued_at`); its sent and finished
times come with it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_smorest.pagination import PaginationParameters
from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import Session

from hub.api.delivery_rows import row_dicts, select_rows
from hub.store.models import Delivery, DeviceEvent

STATUS, DELIVERY = "status", "delivery"
KINDS = (STATUS, DELIVERY)


def _timeline(device_id: str, since: datetime | None, until: datetime | None, kinds: tuple[str, ...]) -> Any:
    parts = []
    for kind, table_id, at, dev in ((STATUS, DeviceEvent.id, DeviceEvent.at, DeviceEvent.device_id),
                                    (DELIVERY, Delivery.id, Delivery.queued_at, Delivery.device_id)):
        if kind not in kinds:
            continue
        part = select(literal(kind).label("kind"), table_id.label("ref"), at.label("at")).where(dev == device_id)
        if since is not None:
            part = part.where(at >= since)
        if until is not None:
            part = part.where(at < until)
        parts.append(part)
    return union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()


def history_page(session: Session, device_id: str, pp: PaginationParameters, since: datetime | None = None,
                 until: datetime | None = None, kinds: tuple[str, ...] = KINDS) -> list[dict[str, Any]]:
    """One page of the device's timeline as API dicts; sets the total for X-Pagination."""
    tl = _timeline(device_id, since, until, kinds)
    pp.item_count = session.scalar(select(func.count()).select_from(tl)) or 0
    if pp.first_item >= pp.item_count:
        return []
    page = list(session.execute(select(tl.c.kind, tl.c.ref).order_by(tl.c.at.desc(), tl.c.kind, tl.c.ref.desc())
                                .offset(pp.first_item).limit(pp.page_size)))
    event_ids = [ref for kind, ref in page if kind == STATUS]
    delivery_ids = [ref for kind, ref in page if kind == DELIVERY]
    events = {e.id: e for e in session.scalars(select(DeviceEvent).where(DeviceEvent.id.in_(event_ids)))} \
        if event_ids else {}
    deliveries: dict[int, dict[str, Any]] = {}
    if delivery_ids:
        rows = list(session.execute(select_rows(Delivery.id.in_(delivery_ids), with_command=True)))
        for row, d in zip(rows, row_dicts(session, rows, with_command=True)):
            deliveries[row[0]] = d
    out: list[dict[str, Any]] = []
    for kind, ref in page:
        if kind == STATUS:
            e = events[ref]
            out.append({"kind": STATUS, "at": e.at, "status": {"state": e.state, "previous": e.previous,
                                                                "reason": e.reason}})
        else:
            d = deliveries[ref]
            out.append({"kind": DELIVERY, "at": d["queued_at"], "delivery": d})
    return out
