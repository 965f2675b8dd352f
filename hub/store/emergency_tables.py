"""Tables of the one-step emergency (hub.broadcast.emergency): one row per emergency fired."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.models import Base


class Emergency(Base):
    """An emergency fired in one step: the content it made (or sent), its commands — `play` to
    the speakers, `led_show` to the boards, each an ordinary command with one delivery row per
    device — what its answer promised (`scope`), and who ended it early. Either command id finds it,
    so `POST /api/emergency/<command id>/stop` works with whichever id a client kept."""

    __tablename__ = "emergencies"
    __table_args__ = (UniqueConstraint("issuer", "idempotency_key", name="uq_emergency_issuer_key"),
                      Index("ix_emergencies_play", "play_command_id"),
                      Index("ix_emergencies_led", "led_command_id"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    content_id: Mapped[str] = mapped_column(ForeignKey("contents.id"))
    play_command_id: Mapped[str | None] = mapped_column(String(32))
    led_command_id: Mapped[str | None] = mapped_column(String(32))
    issuer: Mapped[str] = mapped_column(String(100))
    issuer_id: Mapped[int | None]
    # a repeated request (a double click on "fire") answers the first emergency instead of a second
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    target: Mapped[dict[str, Any]] = mapped_column(JSON)  # hub.schemas.target.TargetSchema
    scope: Mapped[dict[str, Any]] = mapped_column(JSON)  # the answer's counts at the moment it fired
    timings_ms: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]
    stopped_by: Mapped[str | None] = mapped_column(String(100))
    stop_command_ids: Mapped[list[Any] | None] = mapped_column(JSON)
