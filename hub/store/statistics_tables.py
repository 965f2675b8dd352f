"""What the statistics reports (hub.reports.statistics) need that must outlive what they count.

Reports keep their numbers when a device is deleted later: device_events go with their device
(ON DELETE CASCADE), so each device's life is also written here, at the moment it happens, with
the area it was in — registered, every operating-state change, moved to another area, removed.
No foreign key: a row outlives its device. (The as-run log and the deliveries keep their own
snapshots: as_run.area_code / content_* and deliveries.area_code.)
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.models import Base

REMOVED = "removed"  # the state of the row written when a device is deleted: its life ends there


class DeviceStateLog(Base):
    """From `at` on, device `device_id` is in area `area_code` and operating state `state`
    (unknown, online, degraded, offline — hub.fleet.health — or `removed`)."""

    __tablename__ = "device_state_log"
    __table_args__ = (Index("ix_device_state_log_device_at", "device_id", "at"),
                      Index("ix_device_state_log_at", "at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(64))
    area_code: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(10))


def backfill_device_state_log(conn: Connection) -> None:
    """For the schema step that adds the table: each existing device's registration (state
    unknown, at created_at) and its device_events history, with its current area, so uptime
    reports cover the time before the upgrade. Idempotent: devices already logged are skipped."""
    conn.execute(text(
        "INSERT INTO device_state_log (device_id, area_code, at, state) "
        "SELECT d.id, d.area_code, d.created_at, 'unknown' FROM devices d "
        "WHERE NOT EXISTS (SELECT 1 FROM device_state_log l WHERE l.device_id = d.id)"))
    conn.execute(text(
        "INSERT INTO device_state_log (device_id, area_code, at, state) "
        "SELECT e.device_id, d.area_code, e.at, e.state FROM device_events e JOIN devices d ON d.id = e.device_id "
        "WHERE NOT EXISTS (SELECT 1 FROM device_state_log l WHERE l.device_id = e.device_id AND l.at = e.at)"))
