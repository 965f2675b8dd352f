"""Reading the as-run log in tests: a device's segments, oldest first, as plain tuples."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.store.as_run_tables import AsRunSegment


def segments(rt: Any, device_id: str) -> list[AsRunSegment]:
    with rt.db.session() as s:
        rows = list(s.scalars(select(AsRunSegment).where(AsRunSegment.device_id == device_id)
                              .order_by(AsRunSegment.id)))
        s.expunge_all()
    return rows


def summary(rt: Any, device_id: str) -> list[tuple[str, str, str | None]]:
    """(command id, outcome, interrupted_by) per segment of the device."""
    return [(g.command_id, g.outcome, g.interrupted_by) for g in segments(rt, device_id)]
