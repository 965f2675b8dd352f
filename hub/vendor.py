"""What a vendor adapter is: its manifest, what it is given and what it gives back.

Adapters never touch the database or the queue. The hub hands them a batch of (device,
envelope) pairs and records the per-device results they return; acks and status that arrive
later are handed to a `ResultSink` from `listen`.
"""
from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from marshmallow import Schema

from hub.addresses import AddressPolicy, AddressSchema, check_address, default_policy
from hub.capabilities import DEVICE_KINDS, unknown_capabilities
from hub.contract import Health, ManifestError  # shared with the other kinds (hub/contract.py)
from hub.text import has_unpaired_surrogate
from hub.vendor_traits import Traits


class StatusParseError(ValueError):
    """A device payload could not be understood; the message says what is wrong with it."""


@dataclass(frozen=True)
class Manifest:
    name: str
    title: str
    version: str
    protocols: tuple[str, ...]
    device_kinds: tuple[str, ...]
    capabilities: frozenset[str]
    config_schema: type[Schema] | None = None
    # The form of this vendor's device addresses (hub.addresses): the hub refuses any other at
    # registration, and the adapter checks again with check_address() before opening anything.
    # None: printable text only; a plugin whose addresses name a port or a host must declare one.
    address: AddressSchema | None = None
    traits: Traits = Traits()  # hub/vendor_traits.py: priority handling, confirmation, volume scale…

    def __post_init__(self) -> None:
        bad = unknown_capabilities(self.capabilities)
        if bad:
            raise ManifestError(f"plugin {self.name}: capabilities not in the vocabulary: {', '.join(bad)}")
        kinds = sorted(set(self.device_kinds) - set(DEVICE_KINDS))
        if kinds:
            raise ManifestError(f"plugin {self.name}: unknown device kinds: {', '.join(kinds)}")

    def to_dict(self) -> dict[str, Any]:
        from hub.schemas.export import schema_to_jsonschema

        return {
            "name": self.name,
            "title": self.title,
            "version": self.version,
            "protocols": list(self.protocols),
            "device_kinds": list(self.device_kinds),
            "capabilities": sorted(self.capabilities),
            "config_schema": schema_to_jsonschema(self.config_schema) if self.config_schema else {},
            "address": (self.address or AddressSchema()).to_dict(),
            "traits": self.traits.to_dict(),
        }


@dataclass(frozen=True)
class DeviceRef:
    """A device as an adapter sees it: how to reach it, not where it hangs in the province."""

    id: str
    address: str
    kind: str
    model: str | None = None
    capabilities: frozenset[str] = frozenset()
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Envelope:
    """One command as it travels to devices. `command_id` correlates acks."""

    command_id: str
    verb: str
    params: dict[str, Any]
    priority: str
    expires_at: datetime
    content: dict[str, Any] | None = None


@dataclass(frozen=True)
class Outgoing:
    device: DeviceRef
    envelope: Envelope


class Outcome(str, enum.Enum):
    ACKED = "acked"  # the device confirmed synchronously
    PENDING = "pending"  # sent; the ack will arrive through listen()
    FAILED = "failed"


@dataclass(frozen=True)
class Result:
    device_id: str
    outcome: Outcome
    reason: str | None = None
    transient: bool = False  # worth retrying: link down, timeout, 5xx
    detail: dict[str, Any] | None = None


# A key of Ack.detail: a device that accepted a play to play later (something it may not interrupt
# plays) says so with {"queued": true}; the as-run log (hub.delivery.as_run) opens no segment for it.
ACK_QUEUED = "queued"


@dataclass(frozen=True)
class Ack:
    """A device's answer to a command, parsed from the vendor's wire format."""

    command_id: str
    ok: bool
    reason: str | None = None
    detail: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Every plugin's parse_ack builds one: refuse here, once for all of them, what no database
        # can store (a lone surrogate, NaN in the detail), so that one device cannot fail the
        # ingest's writes.
        for name in ("command_id", "reason", "detail"):
            if has_unpaired_surrogate(getattr(self, name)):
                raise StatusParseError(f"ack: {name} contains an unpaired surrogate (not valid Unicode)")
        if self.detail is not None:
            try:
                json.dumps(self.detail, allow_nan=False)
            except (TypeError, ValueError, RecursionError) as exc:
                raise StatusParseError(f"ack: detail is not storable JSON: {exc}") from None


Done = Callable[[], None]


class ResultSink(Protocol):
    """Where an adapter's listener hands what devices send back. Thread-safe.

    Confirmation (optional on both sides): a sink whose `confirms_commit` attribute is true —
    the hub's ingest — also takes a keyword `done`, a callable it calls (from another thread,
    at most once) when what the item says is committed to the database, or stored in the
    ingest's quarantine, or dropped on purpose (an unknown device). A listener whose transport
    redelivers what it did not acknowledge (MQTT QoS 1 on a persistent session) acknowledges
    then, not on receipt, so that a crashed ingest loses nothing it had heard. Such a sink also
    has `rejected(vendor, address, kind, payload, reason, done=None)` for a message the
    listener could not parse: it is kept in the quarantine. Listeners must check
    `confirms_commit(sink)` first: sinks that do not confirm are called exactly as before."""

    def ack(self, vendor: str, address: str, ack: Ack) -> None: ...

    def status(self, vendor: str, address: str, status: dict[str, Any]) -> None: ...

    def presence(self, vendor: str, address: str, online: bool) -> None: ...


def confirms_commit(sink: object) -> bool:
    """Whether `sink` takes `done=` and `rejected()` (see ResultSink)."""
    return bool(getattr(sink, "confirms_commit", False))


class TransientError(RuntimeError):
    """Raised by an adapter when the whole batch failed for a reason worth retrying."""


class VendorAdapter:
    """Base class of every vendor adapter. Subclasses set `manifest` and implement `send`."""

    manifest: ClassVar[Manifest]
    # Set by the hub (Runtime.make_adapter) from its settings; an adapter built by hand uses
    # hub.addresses.default_policy().
    address_policy: AddressPolicy | None = None

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})

    def check_address(self, address: str) -> None:
        """Raise hub.addresses.AddressError unless `address` has the manifest's form and the
        province's policy allows it. Call before opening anything an address names."""
        check_address(self.manifest.address, address, self.address_policy or default_policy())

    def check_endpoint(self, host: str, port: int, what: str) -> None:
        """The same for a host:port from the plugin's settings (a gateway, a server)."""
        (self.address_policy or default_policy()).check_endpoint(host, port, what)

    def open(self) -> None:
        """Connect to the broker, gateway or bus. Called once before send or listen."""

    def close(self) -> None:
        """Release connections. Called once; the adapter is not reused after it."""

    def send(self, batch: Sequence[Outgoing]) -> list[Result]:
        """Deliver the batch; return exactly one Result per item, in any order."""
        raise NotImplementedError

    def watch(self, devices: Sequence[DeviceRef]) -> None:
        """The enabled devices this adapter drives, given before listen() and again whenever the
        registry changes. Adapters that must poll their devices for status keep this list;
        adapters whose devices push need not override it."""

    def listen(self, sink: ResultSink) -> None:
        """Start handing asynchronous acks, status and presence to `sink` (non-blocking).
        Adapters whose devices answer synchronously need not override this."""

    def wait_ready(self, timeout: float) -> bool:
        """After listen(): whether the adapter can hear devices yet (subscriptions granted…).
        The hub waits on it so that no early ack is lost."""
        return True

    def parse_status(self, address: str, payload: bytes) -> dict[str, Any]:
        """Turn a vendor status payload into a DeviceStatus dict, or raise StatusParseError."""
        raise NotImplementedError

    def parse_ack(self, address: str, payload: bytes) -> Ack:
        """Turn a vendor ack payload into an Ack, or raise StatusParseError."""
        raise NotImplementedError

    def health(self) -> Health:
        """Whether the adapter can reach its devices' transport right now."""
        return Health(True)
