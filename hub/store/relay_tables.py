"""Tables of live broadcast and relay (hub.broadcast.relay): the sessions, each one Icecast mount,
and what happened on their air (dead air, back on air, a retried station)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.models import Base


class RelaySession(Base):
    """One live broadcast or relay: the desired state the API writes (`desired`), and what
    `hub relays run` found when it last looked (`state`, counters). The mount's source password is
    never stored: it is derived from the installation's secret key (hub.broadcast.relay.sessions)."""

    __tablename__ = "relay_sessions"
    __table_args__ = (Index("ix_relay_sessions_desired", "desired", "state"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # station | content | live
    station_id: Mapped[str | None] = mapped_column(String(64))
    station_url: Mapped[str | None] = mapped_column(String(1000))  # as the stations file said at the start
    content_id: Mapped[str | None] = mapped_column(ForeignKey("contents.id"))
    mount: Mapped[str] = mapped_column(String(100), unique=True)
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    priority: Mapped[str] = mapped_column(String(10))
    desired: Mapped[str] = mapped_column(String(10), default="running")  # running | stopped
    # starting | on_air | fallback | ended | stopped | error (hub.broadcast.relay.sessions.STATES)
    state: Mapped[str] = mapped_column(String(10), default="starting")
    error: Mapped[str | None] = mapped_column(Text)
    listeners: Mapped[int] = mapped_column(Integer, default=0)
    bytes_read: Mapped[int] = mapped_column(Integer, default=0)
    bytes_sent: Mapped[int] = mapped_column(Integer, default=0)
    start_command_id: Mapped[str | None] = mapped_column(String(32))
    stop_command_id: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(100))
    created_by_id: Mapped[int | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]
    stopped_by: Mapped[str | None] = mapped_column(String(100))
    stopped_at: Mapped[datetime | None]


class RelayEvent(Base):
    """Something that happened on a session's air: `dead_air` (reason no_bytes, silence or
    source_lost), `on_air`, `source_ended` (a content played to its end), `retry` (a station
    tried again)."""

    __tablename__ = "relay_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("relay_sessions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(20))
    at: Mapped[datetime]
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
