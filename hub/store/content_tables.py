"""Tables of the content pipeline: a content's past versions, what each configured source last
did, and the audio files uploaded into the media store. The `contents` table itself is in hub.store.models beside the commands that play it."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.models import Base


class ContentStatus(StrEnum):
    """Where a content stands in the editorial workflow (hub.content.workflow moves it)."""

    DRAFT = "draft"  # being written, or just taken in from a source
    SUBMITTED = "submitted"  # waiting for an approver
    APPROVED = "approved"  # approved, not yet published
    PUBLISHED = "published"  # operators may send it to devices
    REJECTED = "rejected"  # sent back, with a reason; editing makes it a draft again
    ARCHIVED = "archived"  # no longer in use (also: withdrawn by its source), kept for the record


class ContentVersion(Base):
    """One edit of a content: who, when, and what changed (field → [before, after])."""

    __tablename__ = "content_versions"
    __table_args__ = (Index("ux_content_versions", "content_id", "version", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    content_id: Mapped[str] = mapped_column(ForeignKey("contents.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    changed_by: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime]
    changes: Mapped[dict[str, Any]] = mapped_column()
    note: Mapped[str | None] = mapped_column(Text)


class SourceStatus(Base):
    """What a configured source last did: the health the API and `hub sources` show."""

    __tablename__ = "source_status"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    plugin: Mapped[str] = mapped_column(String(100))
    last_attempt_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(1000))
    last_error_at: Mapped[datetime | None]
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row; drives the backoff
    items_fetched: Mapped[int] = mapped_column(Integer, default=0)  # in all
    items_last: Mapped[int] = mapped_column(Integer, default=0)  # in the last successful fetch
    next_poll_at: Mapped[datetime | None]
    config_hash: Mapped[str | None] = mapped_column(String(64))  # the configuration it last ran with
    notes: Mapped[list[Any] | None] = mapped_column()  # what the last fetch passed over or refused, and why


class MediaRecord(Base):
    """One object the hub put into its media store (hub.content.media): what devices will fetch,
    its digest and length, and who brought it. The bytes live in the store, not here."""

    __tablename__ = "media_objects"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)  # the media store's key
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)  # bytes, as stored (after transcoding)
    sha256: Mapped[str] = mapped_column(String(64))
    duration_s: Mapped[float | None] = mapped_column(Float)
    original_name: Mapped[str | None] = mapped_column(String(255))  # the uploaded file's name, for people
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
