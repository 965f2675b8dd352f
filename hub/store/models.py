"""Tables. Times are stored as naive UTC and handed out timezone-aware."""
from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, TypeDecorator,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hub.capabilities import DEFAULT_PRIORITY


class UTCDateTime(TypeDecorator):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None else None


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class Area(Base):
    """An administrative unit (or a village below one). `path` is `/80/25675/` for fast subtrees."""

    __tablename__ = "areas"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("areas.code"), index=True)
    path: Mapped[str] = mapped_column(String(700), index=True)
    level: Mapped[int] = mapped_column(Integer)


class Device(Base):
    __tablename__ = "devices"
    # (area_code, id) rather than area_code alone: a list page of one area sorts and pages the ids
    # from the index without reading the rows (bench/: GET /api/devices?area= at 100,000 devices).
    __table_args__ = (UniqueConstraint("vendor", "address", name="uq_device_vendor_address"),
                      Index("ix_devices_area_kind", "area_code", "kind"),
                      Index("ix_devices_area_id", "area_code", "id"),
                      # a geometry's bounding box is a latitude range first (hub.fleet.targeting.devices_in)
                      Index("ix_devices_lat_lon", "latitude", "longitude"))
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    vendor: Mapped[str] = mapped_column(String(64), index=True)
    model: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    area_code: Mapped[str] = mapped_column(ForeignKey("areas.code"))
    address: Mapped[str] = mapped_column(String(200))
    capabilities: Mapped[list[Any]] = mapped_column(JSON, default=list)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    admin_state: Mapped[str] = mapped_column(String(10), default="enabled")
    created_at: Mapped[datetime]
    # WGS 84 degrees, when known: an alert's polygon or circle selects the devices inside it
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    area: Mapped[Area] = relationship(lazy="joined")
    tags: Mapped[list[DeviceTag]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    status: Mapped[DeviceStatus | None] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                       uselist=False)

    @property
    def tag_names(self) -> list[str]:
        return sorted(t.tag for t in self.tags)


class DeviceTag(Base):
    __tablename__ = "device_tags"
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class DeviceStatus(Base):
    __tablename__ = "device_status"
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    activity: Mapped[str] = mapped_column(String(20), default="unknown")
    source: Mapped[str | None] = mapped_column(String(2000))
    volume: Mapped[int | None] = mapped_column(Integer)
    brightness: Mapped[int | None] = mapped_column(Integer)
    power: Mapped[bool | None] = mapped_column(Boolean)
    signal: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    faults: Mapped[list[Any]] = mapped_column(JSON, default=list)
    firmware: Mapped[str | None] = mapped_column(String(100))
    reported_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    # Operating state, separate from the administrator's enabled/disabled (Device.admin_state).
    operating_state: Mapped[str] = mapped_column(String(10), default="unknown")
    state_reason: Mapped[str | None] = mapped_column(String(300))
    state_since: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)


class DeviceEvent(Base):
    """A device's operating-state history: one row per transition, for uptime reports."""

    __tablename__ = "device_events"
    __table_args__ = (Index("ix_device_events_device_at", "device_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(10))
    previous: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(300))


class IngestQuarantine(Base):
    """A device message the ingest could not understand or store, kept instead of blocking the
    others: who sent it, what it was (an ASCII repr, so that anything can be stored) and why."""

    __tablename__ = "ingest_quarantine"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    vendor: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(200))
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)  # None: not a registered device
    kind: Mapped[str] = mapped_column(String(20))  # ack | status | presence (unparsed: the raw message)
    payload: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(500))


class Group(Base):
    __tablename__ = "groups"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    area_code: Mapped[str | None] = mapped_column(ForeignKey("areas.code"))
    members: Mapped[list[GroupMember]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class GroupMember(Base):
    __tablename__ = "group_members"
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)


class Content(Base):
    """A bulletin. It belongs to an area and goes draft → submitted → approved → published →
    archived (or rejected) by hub.content.workflow; `version` counts edits (content_versions).
    Rows made before the workflow existed have no status and count as published."""

    __tablename__ = "contents"
    __table_args__ = (Index("ux_contents_source_item", "source", "external_id", unique=True),
                      Index("ix_contents_area_status", "area_code", "status"))
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(20), default="vi")
    body: Mapped[str | None] = mapped_column(Text)
    media: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    category: Mapped[str | None] = mapped_column(String(100))
    origin: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    priority: Mapped[str] = mapped_column(String(10), default=DEFAULT_PRIORITY)
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    area_code: Mapped[str | None] = mapped_column(ForeignKey("areas.code"))
    status: Mapped[str | None] = mapped_column(String(12))  # hub.store.content_tables.ContentStatus
    version: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime | None]
    updated_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_by: Mapped[str | None] = mapped_column(String(100))  # who approved or rejected
    reviewed_at: Mapped[datetime | None]
    published_by: Mapped[str | None] = mapped_column(String(100))
    published_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(500))  # why it was rejected or withdrawn
    source: Mapped[str | None] = mapped_column(String(100))  # the configured source it came from
    external_id: Mapped[str | None] = mapped_column(String(500))  # the source's id of the item
    # where the source meant it for, beyond area_code: {"area_codes": [...], "polygons": [...], "circles": [...]}
    geography: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # how its text became audio: {"provider", "voice", "fallback_from", "cache_key", "loudness_lufs"}
    speech: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Command(Base):
    __tablename__ = "commands"
    __table_args__ = (UniqueConstraint("issuer", "idempotency_key", name="uq_command_idempotency"),
                      Index("ux_commands_account_idempotency", "issuer_id", "account_idempotency_key",
                            unique=True),
                      # the scheduler's question, "unreleased, by start", without scanning history
                      Index("ix_commands_due", "released_at", "start_at"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    verb: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    content_id: Mapped[str | None] = mapped_column(ForeignKey("contents.id"))
    priority: Mapped[str] = mapped_column(String(10))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    # Idempotency keys belong to the issuing *account* (issuer_id, account_idempotency_key): a name
    # taken again after its account was deleted must not replay or collide with the old one's keys.
    # `idempotency_key`, unique per issuer *name*, holds the keys of actors that are no account
    # (local-admin, cli:<user>) and of rows written before schema 3 (hub.delivery.dispatch.issued_by).
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    issuer: Mapped[str] = mapped_column(String(100))  # the name, as shown; identity is issuer_id
    issuer_id: Mapped[int | None] = mapped_column(Integer)  # users.id; no foreign key: it outlives the user
    account_idempotency_key: Mapped[str | None] = mapped_column(String(200))
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    total: Mapped[int] = mapped_column(Integer, default=0)
    # Scheduling (hub.delivery.release): a command with a start_at in the future keeps its deliveries
    # `scheduled` until the scheduler releases it (released_at) a lead time before it starts.
    start_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    cancelled_by: Mapped[str | None] = mapped_column(String(100))
    # Area paths the issuer could reach when submitting (["/"]: every area; None: a command from
    # before schema 3, treated as every area). A command supersedes another only from the same
    # scope or a wider one (hub.delivery.claims).
    issuer_scope: Mapped[list[Any] | None] = mapped_column(JSON)
    content: Mapped[Content | None] = relationship(lazy="joined")


class Delivery(Base):
    """One selected device for one command; ends in exactly one terminal state."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("command_id", "device_id", name="uq_delivery_command_device"),
                      Index("ix_deliveries_state_command", "state", "command_id"),
                      Index("ix_deliveries_device_state", "device_id", "state"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    command_id: Mapped[str] = mapped_column(ForeignKey("commands.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(64))
    vendor: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    queued_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Set when a job loads a `queued` row to send it (hub.delivery.claims): from then on the device may
    # have it, so supersede leaves the row alone and the device's ack is accepted. claimed_by
    # is the rq job id that holds it (recovery hands a dead job's rows to a new one).
    claimed_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    # the device's area when the row was made (hub.delivery.dispatch): statistics count it there
    # even after the device is deleted or moved (None: a row from before schema 6)
    area_code: Mapped[str | None] = mapped_column(String(64))


class AuditEntry(Base):
    """One append-only record; `hash` chains it to the entry before (see hub.access.audit)."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)  # users.id of an account; names can be taken again
    via: Mapped[str] = mapped_column(String(40), default="")
    action: Mapped[str] = mapped_column(String(60), index=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(100))
    # "|/80/794/27694/|/80/807/|": the area paths the action touched, so that a reader limited
    # to some subtrees finds its entries with one LIKE per subtree.
    area_paths: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's last link, one row: appends lock it, so that they line up across processes,
    and verification compares it with the last entry, so that a deleted tail shows."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class AuditRefusal(Base):
    """How many refused writes of one actor on one endpoint the audit log has not yet counted:
    hub.access.audit_refusals writes at most one `access.denied` entry a minute per such pair."""

    __tablename__ = "audit_refusals"
    actor_key: Mapped[str] = mapped_column(String(120), primary_key=True)  # user:<id>, or name:<name>
    endpoint: Mapped[str] = mapped_column(String(120), primary_key=True)
    method: Mapped[str] = mapped_column(String(10), primary_key=True)
    logged_at: Mapped[datetime]  # when the last entry was written
    pending: Mapped[int] = mapped_column(Integer, default=0)  # refusals since, not yet in an entry
    first_pending_at: Mapped[datetime | None]
    last_pending_at: Mapped[datetime | None]


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(300))  # None: no interactive login
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    password_changed_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    areas: Mapped[list[UserArea]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def area_codes(self) -> list[str]:
        return sorted(a.area_code for a in self.areas)


class UserArea(Base):
    __tablename__ = "user_areas"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    area_code: Mapped[str] = mapped_column(ForeignKey("areas.code"), primary_key=True, index=True)


class ApiToken(Base):
    """A machine's credential. Only a sha256 of the token is kept; `prefix` lets people tell
    tokens apart. `areas` (None: the user's) and `read_only` can only narrow the user's rights."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(20))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    areas: Mapped[list[Any] | None] = mapped_column(JSON)
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    user: Mapped[User] = relationship(lazy="joined")


class LoginSession(Base):
    """A console login. The cookie carries a random id; only its sha256 is stored, and deleting
    the row (logout, password change, disabled account) ends the session at once."""

    __tablename__ = "login_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sid_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    user: Mapped[User] = relationship(lazy="joined")


AUDIT_GENESIS = "0" * 64  # prev_hash of the first audit entry


class DeliveryState(StrEnum):
    """Where one delivery stands: the only spelling of these words in hub/ (tests/test_single_source.py).
    A StrEnum, so that a member is its value wherever it goes: the database column, JSON, f-strings."""

    SCHEDULED = "scheduled"  # waiting for its command's start_at (hub.delivery.release releases it)
    QUEUED = "queued"  # waiting for a worker (claimed_at once a job has loaded it)
    SENT = "sent"  # handed to the transport; waiting for the device's answer
    ACKED = "acked"  # the device confirmed
    FAILED = "failed"  # the device, its link or the hub refused it
    EXPIRED = "expired"  # expires_at passed before an answer
    UNSUPPORTED = "unsupported"  # the device lacks a capability the verb needs
    SUPERSEDED = "superseded"  # a newer command of the same slot (or a cancel) replaced it before it went out


ACTIVE_STATES = (DeliveryState.SCHEDULED, DeliveryState.QUEUED, DeliveryState.SENT)
TERMINAL_STATES = (DeliveryState.ACKED, DeliveryState.FAILED, DeliveryState.EXPIRED, DeliveryState.UNSUPPORTED,
                   DeliveryState.SUPERSEDED)
DELIVERY_STATES = tuple(DeliveryState)  # in the order the API lists counts


# Tables of the content pipeline live in their own module; importing it here registers them on Base.
from hub.store.content_tables import ContentStatus, ContentVersion, MediaRecord, SourceStatus  # noqa: E402,F401
from hub.store.broadcast_tables import Programme  # noqa: E402,F401
from hub.store.relay_tables import RelayEvent, RelaySession  # noqa: E402,F401
from hub.store.emergency_tables import Emergency  # noqa: E402,F401
from hub.store.as_run_tables import AsRunSegment  # noqa: E402,F401
from hub.store.statistics_tables import DeviceStateLog  # noqa: E402,F401
