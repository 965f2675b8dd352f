"""The ingest's quarantine: device messages it could not understand or could not store.

One bad report (a lone surrogate, a date no database holds, a number too big for its column)
used to fail every write batch it was in, and the batch was retried for ever: acks of a whole
province then never arrived. Now the ingest keeps such a message here — vendor, address, an
ASCII repr of what it was, why — and writes the others. Administrators read it with
`GET /api/ingest/quarantine` or `hub ingest quarantine`.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, false, func, select
from sqlalchemy.orm import Session

from hub.fleet.areas import under_any
from hub.store.models import Area, Device, IngestQuarantine
from hub.text import printable_repr

KINDS = ("ack", "status", "presence", "unparsed")


@dataclass(frozen=True)
class Entry:
    vendor: str
    address: str
    kind: str
    payload: Any  # anything: stored as its ASCII repr (bytes as received, or the parsed value)
    reason: str
    at: datetime
    device_id: str | None = None


def _text(value: str, limit: int) -> str:
    """`value` made storable by any driver (escapes instead of lone surrogates), cut to `limit`."""
    safe = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return safe if len(safe) <= limit else safe[:limit - 3] + "..."


def store(session: Session, entries: list[Entry]) -> None:
    """Add quarantine rows; every field is made storable first, so this never fails on content."""
    if not entries:
        return
    session.connection().execute(IngestQuarantine.__table__.insert(), [
        {"at": e.at, "vendor": _text(e.vendor, 64), "address": _text(e.address, 200), "kind": _text(e.kind, 20),
         "device_id": e.device_id and _text(e.device_id, 64), "payload": printable_repr(e.payload),
         "reason": _text(e.reason, 500)} for e in entries])


def prune(session: Session, keep: int) -> int:
    """Delete all but the newest `keep` rows: a device spamming malformed messages must not fill
    the disk. Returns rows deleted."""
    newest = session.scalar(select(func.max(IngestQuarantine.id)))
    if newest is None or newest <= keep:
        return 0
    return session.execute(delete(IngestQuarantine).where(IngestQuarantine.id <= newest - keep)
                           .execution_options(synchronize_session=False)).rowcount or 0


def query(area_paths: Iterable[str] | None, *, vendor: str | None = None,
          since: datetime | None = None) -> Select[Any]:
    """Rows newest first. `area_paths` None: everything; otherwise only rows of devices in those
    area subtrees (a message from an address no device has belongs to no area: only an
    unrestricted reader — the hub's host, `hub ingest quarantine` — sees those)."""
    stmt = select(IngestQuarantine)
    if area_paths is not None:
        paths = list(area_paths)
        stmt = (stmt.join(Device, Device.id == IngestQuarantine.device_id)
                .join(Area, Area.code == Device.area_code).where(under_any(Area.path, paths) if paths else false()))
    if vendor:
        stmt = stmt.where(IngestQuarantine.vendor == vendor)
    if since is not None:
        stmt = stmt.where(IngestQuarantine.at >= since)
    return stmt.order_by(IngestQuarantine.id.desc())


def count(session: Session) -> int:
    return session.scalar(select(func.count(IngestQuarantine.id))) or 0


def as_dict(row: IngestQuarantine) -> dict[str, Any]:
    return {"id": row.id, "at": row.at, "vendor": row.vendor, "address": row.address, "device_id": row.device_id,
            "kind": row.kind, "payload": row.payload, "reason": row.reason}
