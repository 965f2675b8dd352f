"""Tables of broadcasting (hub.broadcast): the programmes (*lịch phát*) a commune keeps."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.capabilities import DEFAULT_PRIORITY
from hub.store.models import Base


class Programme(Base):
    """A recurring slot: what plays (one published content, a playlist of them, or a stream), where
    (a command target), in which class, and when — its VEVENTs kept as iCalendar text, so that a
    schedule goes to and comes from any calendar tool unchanged (hub.broadcast.ics). Its
    occurrences become ordinary scheduled commands ahead of time (hub.broadcast.materialise)."""

    __tablename__ = "programmes"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    target: Mapped[dict[str, Any]] = mapped_column(JSON)  # hub.schemas.target.TargetSchema
    # exactly one of the three says what plays
    content_id: Mapped[str | None] = mapped_column(ForeignKey("contents.id"))
    playlist: Mapped[list[Any] | None] = mapped_column(JSON)  # content ids, played one after another
    stream_url: Mapped[str | None] = mapped_column(String(1000))
    priority: Mapped[str] = mapped_column(String(10), default=DEFAULT_PRIORITY)
    ical: Mapped[str] = mapped_column(Text)  # a VCALENDAR holding the VEVENT and its moved occurrences
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]  # occurrences starting at or after it are not played
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    # Added after schema 4, so nullable (hub.broadcast.editing):
    # the narrowest area holding everything the target names: who sees it, filtering by area
    area_code: Mapped[str | None] = mapped_column(String(64), index=True)
    # overlapping another programme on a device was accepted: the higher precedence has the device
    precedence: Mapped[int | None] = mapped_column(Integer)
    # bumped by each edit and part of each command's idempotency key (None: never edited, 0)
    revision: Mapped[int | None] = mapped_column(Integer)
    revised_at: Mapped[datetime | None]  # when this revision was saved (None: created_at)
