"""The as-run log (proof of play): what each device actually played, per item, derived from its
acks and status reports by hub.delivery.as_run — never from the plan. The plan (the command's
start_at and expires_at, the programme's key) is kept beside each segment so that a report shows
planned against played."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.models import Base, DeliveryState


class AsRunOutcome:
    """How a segment ended (the words are the API's)."""

    PLAYING = "playing"  # still on air: the device's last report shows it
    FINISHED = "finished"  # ran its length (a relay: until its relay_stop)
    INTERRUPTED = "interrupted"  # a higher-ranking item replaced it (interrupted_by names it); may resume
    STOPPED = "stopped"  # a stop, or a newer item of the same rank, ended it (interrupted_by names it)
    # it ended early with no command to explain it (reason says what was seen); the delivery state's word
    FAILED = DeliveryState.FAILED.value
    SKIPPED = "skipped"  # interrupted and not resumed: its slot had closed (or the device did not)
    ALL = (PLAYING, FINISHED, INTERRUPTED, STOPPED, FAILED, SKIPPED)


class AsRunSegment(Base):
    """One stretch of one item on one device. An item interrupted and resumed has two segments
    (the second's resume_of names the command it resumes); one never resumed has a `skipped` row."""

    __tablename__ = "as_run"
    __table_args__ = (Index("ix_as_run_device_started", "device_id", "started_at"),
                      Index("ix_as_run_command", "command_id"),
                      Index("ix_as_run_device_outcome", "device_id", "outcome"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(64))
    command_id: Mapped[str] = mapped_column(String(32))
    verb: Mapped[str] = mapped_column(String(20))  # play | relay_start
    content_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(String(2000))  # what the device reported playing (stream URL…)
    priority: Mapped[str] = mapped_column(String(10))  # the bulletin class
    rank: Mapped[str] = mapped_column(String(10))  # the arbiter's rank (hub.arbiter_rule): normal … live, emergency
    started_at: Mapped[datetime | None]  # None for a skipped row: it never played again
    ended_at: Mapped[datetime | None]  # None while playing
    outcome: Mapped[str] = mapped_column(String(12))  # AsRunOutcome
    reason: Mapped[str | None] = mapped_column(String(500))
    interrupted_by: Mapped[str | None] = mapped_column(String(32))  # command id
    interrupted_by_class: Mapped[str | None] = mapped_column(String(10))
    # the plan, beside what happened
    planned_start_at: Mapped[datetime | None]
    planned_expires_at: Mapped[datetime | None]
    programme_key: Mapped[str | None] = mapped_column(String(200))  # the programme occurrence's idempotency key
    # resume: on a resumed segment, the command it resumes (itself when the device resumed it, the
    # original when the hub re-sent it); on an interrupted one, what became of it: resumed | resuming |
    # skipped (None: still waiting for the interrupter to end) and the command that resumes it
    resume_of: Mapped[str | None] = mapped_column(String(32))
    follow_up: Mapped[str | None] = mapped_column(String(10))
    resumed_by: Mapped[str | None] = mapped_column(String(32))
    # snapshots taken when the segment was recorded, so that statistics (hub.reports.statistics)
    # keep their numbers after the device or the content is deleted (None: rows from before
    # schema 6): the device's area then, the content's title and category, and its origin —
    # national | provincial | local (hub.delivery.as_run_facts states the rule)
    area_code: Mapped[str | None] = mapped_column(String(64))
    content_title: Mapped[str | None] = mapped_column(String(300))
    content_category: Mapped[str | None] = mapped_column(String(100))
    content_origin: Mapped[str | None] = mapped_column(String(12))
