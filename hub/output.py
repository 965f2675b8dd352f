"""What an output is: something going out of the hub (metrics, an event stream, open data, reports
pushed upward to the province or the national system).

An output says in its manifest which hub events it wants, by type name (`hub/events.py` owns the
types: "device.offline", "delivery.changed"…), and/or an interval. The hub then calls
`handle(event)` for each such event and `run_periodic(now)` every interval. Outputs read; they
never change the hub's state, and a slow or failing output must not hold up the others.

What an output may read of the hub comes through an `OutputContext`, handed to `open(context)`
before the first event and kept in `self.context`: figures computed when asked (devices by
state and area, deliveries by state and class, queue depths, ingest lag, source health), in the
plain types below. A plugin never imports the hub's tables or opens its database: the tables
change between releases, these types only grow (fields are added, never renamed or removed).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from hub.contract import BaseManifest, ContractError, Health, ManifestError, Plugin, stub

if TYPE_CHECKING:
    from hub.events import Event

ALL_EVENTS = "*"  # in OutputManifest.events: every event type, present and future
EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*([.:][a-z0-9_]+)*")


class OutputError(ContractError):
    """An output's manifest breaks the contract, or it could not deliver; the message says what.
    `transient=True`: the destination is down, the hub may try again later."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def event_type(event: Event | Mapping[str, Any]) -> str:
    """The type name of an event, whether it is a typed event (attribute `type`) or a dict."""
    name = event.get("type") if isinstance(event, Mapping) else getattr(event, "type", None)
    if not isinstance(name, str):
        raise OutputError(f"event without a type name: {event!r:.200}")
    return name


@dataclass(frozen=True, kw_only=True)
class OutputManifest(BaseManifest):
    kind: ClassVar[str] = "output"
    events: frozenset[str] = frozenset()  # event type names handle() receives; "*" for all
    interval_s: float | None = None  # run_periodic() every so many seconds; None: never

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.events, str):  # frozenset("device.offline") would be its letters
            raise ManifestError(f"output {self.name}: events must be a set of type names, not one string")
        object.__setattr__(self, "events", frozenset(self.events))
        bad = sorted(e for e in self.events if not isinstance(e, str)
                     or (e != ALL_EVENTS and not EVENT_NAME.fullmatch(e)))
        if bad:
            raise ManifestError(f"output {self.name}: not event type names: {', '.join(map(repr, bad))}")
        if self.interval_s is not None and (not isinstance(self.interval_s, int | float) or self.interval_s <= 0):
            raise ManifestError(f"output {self.name}: interval_s must be a positive number of seconds")
        if not self.events and self.interval_s is None:
            raise ManifestError(f"output {self.name}: declares neither events nor interval_s, so it would never run")

    def wants(self, event: Event | Mapping[str, Any]) -> bool:
        """Whether handle() should be given this event."""
        return ALL_EVENTS in self.events or event_type(event) in self.events

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "kind": self.kind, "events": sorted(self.events),
                "interval_s": self.interval_s}


# -- what an output may read: the context -------------------------------------------------------------
@dataclass(frozen=True)
class AreaInfo:
    """An administrative unit (or a village): its code, name and type ("province", "district",
    "commune", "village"… as the area data says)."""

    code: str
    name: str
    type: str


@dataclass(frozen=True)
class DeviceCount:
    """How many devices share these values. `state` is the operating state (online, degraded,
    offline, unknown); `enabled` the administrator's switch; `areas` the device's area and every
    area above it, the province first."""

    state: str
    enabled: bool
    kind: str
    vendor: str
    areas: tuple[AreaInfo, ...]
    count: int


@dataclass(frozen=True)
class DeliveryCount:
    """How many deliveries (one command for one device) are in `state`, for commands of
    `priority` (normal, priority, emergency)."""

    state: str
    priority: str
    count: int


@dataclass(frozen=True)
class QueueDepth:
    """One job queue of the hub: jobs waiting, being worked, and failed (kept for inspection)."""

    name: str
    waiting: int
    running: int
    failed: int


@dataclass(frozen=True)
class IngestLag:
    """How current what the hub knows of its devices is. `last_report_at`: when the newest
    report (ack, status, presence) heard from any device was stored; `oldest_unacked_at`: when
    the oldest delivery still waiting for its device's ack was sent. None: there is none."""

    last_report_at: datetime | None
    oldest_unacked_at: datetime | None
    unacked: int


@dataclass(frozen=True)
class SourceHealth:
    """A content source's last polls (hub `sources_file`)."""

    name: str
    plugin: str
    failures: int  # in a row; 0 after a success
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class AreaStatistics:
    """One area's statistics over [period_start, period_end) (local midnights, timezone-aware), with
    its whole subtree: computed from what devices confirmed (hub.reports.statistics states each
    definition). Counts and sums of a parent equal the sum of its children's (plus devices
    registered on the parent itself); percentages are recomputed from the summed parts.

    `level`: the area's type (province, district, commune…); rows go down to communes (a village's
    devices count for its commune). `devices`: devices that existed in the period; `uptime_percent`:
    their time online or degraded over their time in the period (None: no device). `bulletins`:
    items (a command with its content) played on at least one device of a commune, once per commune;
    `minutes_broadcast`: the sum of what each device played; `bulletins_by_class`: by normal,
    priority, emergency. `deliveries`: acked + failed + expired deliveries queued in the period,
    `deliveries_acked` the acked ones. `emergency_targeted` / `emergency_acked`: deliveries of
    emergency play, relay and LED commands (unsupported ones excepted) and those acked.
    `not_played`: plays planned in the period that never reached the air on a device."""

    area_code: str
    area_name: str
    level: str
    parent_code: str | None
    period_start: datetime
    period_end: datetime
    devices: int
    uptime_percent: float | None
    bulletins: int
    minutes_broadcast: float
    bulletins_by_class: Mapping[str, int]
    deliveries: int
    deliveries_acked: int
    emergency_targeted: int
    emergency_acked: int
    not_played: int


class OutputContext(Protocol):
    """What the hub lends an output (see the module's docstring). Every method reads the hub's
    state as it is when called — an output that reports figures asks at the moment it reports,
    rather than counting events, so its figures never drift from the database. Calls may raise
    OutputError(…, transient=True) when the database or Redis cannot be reached."""

    hub_name: str  # the setting hub_name: which hub this is among several

    def now(self) -> datetime:
        """The hub's time, timezone-aware UTC."""
        ...

    def devices(self) -> list[DeviceCount]:
        """Every registered device, counted by operating state, switch, kind, vendor and area."""
        ...

    def deliveries(self, since: datetime | None = None) -> list[DeliveryCount]:
        """Deliveries by state and class: every one still open (scheduled, queued, sent) and the
        others queued since `since` (None: all of them, which reads the whole history)."""
        ...

    def queues(self) -> list[QueueDepth]:
        """The hub's job queues (deliveries by class, sources, …)."""
        ...

    def ingest(self) -> IngestLag:
        ...

    def sources(self) -> list[SourceHealth]:
        """Every source that has polled at least once."""
        ...

    def statistics(self, period_start: datetime, period_end: datetime,
                   area_code: str | None = None) -> list[AreaStatistics]:
        """One row per area of the subtree of `area_code` (None: the whole province, every area
        at the top of the tree) down to communes, parents first. Reports cover whole local days
        (the setting `timezone`): from the day period_start falls on to the day just before
        period_end — pass local midnights; a bound between midnights widens to its whole day.
        Raises OutputError for an unknown area code."""
        ...


class Output(Plugin):
    """Base class of every output. Subclasses set `manifest` and implement handle and/or run_periodic
    (whichever the manifest declares)."""

    manifest: ClassVar[OutputManifest]
    manifest_type = OutputManifest
    error = OutputError
    context: OutputContext | None = None  # set by open()

    @classmethod
    def contract_problems(cls) -> list[str]:
        problems = super().contract_problems()
        if problems:
            return problems
        m = cls.manifest
        needed = (["handle"] if m.events else []) + (["run_periodic"] if m.interval_s is not None else [])
        return [f"declares {'events' if name == 'handle' else 'interval_s'} but does not implement {name}()"
                for name in needed if getattr(getattr(cls, name), "__contract_stub__", False)]

    def open(self, context: OutputContext) -> None:
        """Called once, before the first handle() or run_periodic(): start what the output serves
        (a listening port, a connection). The default keeps `context` in self.context; an
        override calls super().open(context). Raise OutputError to refuse to start (its message
        is the output's health; transient=True: the hub tries again later)."""
        self.context = context

    def close(self) -> None:
        """Called once when the output is stopped or configured anew: free what open() took."""

    @stub
    def handle(self, event: Event) -> None:
        """One hub event of a type the manifest names (a typed event; its `type` is the name).
        Return quickly: queue slow work. Raise OutputError(…, transient=True) to be given it again."""
        raise NotImplementedError

    @stub
    def run_periodic(self, now: datetime) -> None:
        """Called every manifest.interval_s with the hub's time (timezone-aware UTC)."""
        raise NotImplementedError

    def health(self) -> Health:
        """Whether the destination can be reached right now."""
        return Health(True)
