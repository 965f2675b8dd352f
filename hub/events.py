"""The hub's events, typed: what happened (a device went offline, came back…), for in-process
subscribers and, as JSON on one Redis channel, for other processes (a console, an alerting or
metrics output plugin).

Each event type is a frozen dataclass with a stable `type` name ("device.offline"). On the wire an
event is one JSON object: "type" plus its fields, datetimes as ISO 8601. Fields are only ever
added, never renamed or removed, so a reader written today keeps working; a reader skips types it
does not know (`listen`), so a newer hub can add types without breaking older plugins.

Published today: `device.online`, `device.degraded`, `device.offline` (hub.fleet.health
transitions, from the ingest's writer and sweeper), `relay.dead_air` (`hub relays run`). Declared,
not yet published: `delivery.changed` and `command.finished`. Deliveries end in bulk UPDATEs in eight places (jobs,
due, redeliver, readback, dispatch, arbitration, the ingest's writer and sweeper) that count rows
rather than return them, and "the last delivery of a command ended" needs one place that decides
it exactly once (a Command.finished_at set by a conditional UPDATE) — a schema change of its own.

The channel is `channel_name(settings)`; nothing else builds it.
"""
from __future__ import annotations

import functools
import json
import logging
import threading
import time
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from types import UnionType
from typing import Any, ClassVar, Protocol, Union

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hub.hookspecs import hookimpl

log = logging.getLogger(__name__)

CHANNEL_SUFFIX = ".events"


class _HasQueue(Protocol):
    queue: str


class EventError(ValueError):
    """A message that is not a valid event: not JSON, not an object, a field missing or of the wrong type."""


class UnknownEventType(EventError):
    """An event whose type this hub does not know (published by a newer one): readers skip it."""


EVENT_TYPES: dict[str, type[Event]] = {}


def channel_name(source: Any) -> str:
    """The Redis channel events travel on, for a Runtime or its Settings: `<queue>.events`, so
    that two hubs sharing one Redis (or two tests) do not hear each other."""
    settings: _HasQueue = getattr(source, "settings", source)
    return f"{settings.queue}{CHANNEL_SUFFIX}"


@dataclass(frozen=True)
class Event:
    """Base of every event type. A subclass sets `type` and is registered under it."""

    type: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("type")
        if name:
            if name in EVENT_TYPES:
                raise TypeError(f"event type {name!r} is declared twice ({EVENT_TYPES[name].__name__}, {cls.__name__})")
            EVENT_TYPES[name] = cls

    def to_dict(self) -> dict[str, Any]:
        """The wire form: "type" first, then the fields, datetimes as ISO 8601 strings."""
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, default=str)

    @classmethod
    def from_dict(cls, data: Any) -> Event:
        """The event `data` describes; on `Event` itself, of whatever type `data` names. Keys a
        newer hub added are ignored. Raises UnknownEventType or EventError."""
        if not isinstance(data, dict):
            raise EventError(f"an event is a JSON object, not {type(data).__name__}")
        name = data.get("type")
        if not isinstance(name, str) or not name:
            raise EventError("an event needs a \"type\" string")
        target = EVENT_TYPES.get(name)
        if target is None:
            raise UnknownEventType(f"unknown event type {name!r}")
        if not issubclass(target, cls):
            raise EventError(f"event type {name!r} is not a {cls.__name__}")
        hints = _type_hints(target)
        values = {}
        for f in fields(target):
            if f.name not in data:
                raise EventError(f"{name}: field {f.name!r} is missing")
            values[f.name] = _load(name, f.name, hints[f.name], data[f.name])
        return target(**values)

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            raise EventError(f"not JSON: {exc}") from None
        return cls.from_dict(data)

    # Subscribers read events as dicts before they were typed (event["type"], event["device_id"]):
    # they keep working, reading the wire form.
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)


@functools.cache
def _type_hints(cls: type[Event]) -> dict[str, Any]:
    return typing.get_type_hints(cls)  # once per type: listen() decodes every message with them


def _load(event: str, name: str, hint: Any, value: Any) -> Any:
    """`value` from JSON as the field's declared type, or EventError naming the field."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (Union, UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        base = typing.get_origin(option) or option
        if base is datetime and isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                continue
        if base is Any or (isinstance(base, type) and base is not type(None) and isinstance(value, base)
                           and not (isinstance(value, bool) and base is int)):
            return value
    raise EventError(f"{event}: field {name!r} is not a {hint if isinstance(hint, str) else _spell(hint)}: "
                     f"{value!r:.80}")


def _spell(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)


# -- the event types ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceStateChanged(Event):
    """A device's operating state changed (hub.fleet.health). Subscribe to this class to hear all
    three of its kinds; `state` on the wire repeats what the type says."""

    device_id: str
    previous: str
    reason: str | None
    at: datetime
    state: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        # the field order published before events were typed: type, device_id, state, previous, …
        return {"type": out.pop("type"), "device_id": out.pop("device_id"), "state": self.state, **out}


@dataclass(frozen=True)
class DeviceOnline(DeviceStateChanged):
    """The device is working: it reported in (first time, back from offline, faults cleared)."""
    type = "device.online"
    state = "online"


@dataclass(frozen=True)
class DeviceDegraded(DeviceStateChanged):
    """The device is reachable but reports faults (`reason` lists them)."""
    type = "device.degraded"
    state = "degraded"


@dataclass(frozen=True)
class DeviceOffline(DeviceStateChanged):
    """The device is unreachable: link lost, heartbeat stopped, or deliveries failing in a row."""
    type = "device.offline"
    state = "offline"


DEVICE_STATE_EVENTS: dict[str, type[DeviceStateChanged]] = {c.state: c for c in (DeviceOnline, DeviceDegraded,
                                                                                 DeviceOffline)}


def device_state_changed(device_id: str, state: str, previous: str, reason: str | None,
                         at: datetime) -> DeviceStateChanged:
    """The event of a device entering `state` (online, degraded or offline)."""
    try:
        cls = DEVICE_STATE_EVENTS[state]
    except KeyError:
        raise ValueError(f"no event for a device entering state {state!r}") from None
    return cls(device_id=device_id, previous=previous, reason=reason, at=at)


@dataclass(frozen=True)
class DeliveryChanged(Event):
    """One delivery (a command for one device) changed state. Declared, not yet published (see
    the module's docstring)."""
    type = "delivery.changed"

    delivery_id: int
    command_id: str
    device_id: str
    state: str
    previous: str | None
    reason: str | None
    at: datetime


@dataclass(frozen=True)
class CommandFinished(Event):
    """Every delivery of a command reached a terminal state; `deliveries` counts them by state
    ({"acked": 120, "expired": 3}). Declared, not yet published (see the module's docstring)."""
    type = "command.finished"

    command_id: str
    deliveries: dict[str, int]
    at: datetime


@dataclass(frozen=True)
class RelayDeadAir(Event):
    """A live broadcast or relay fell to dead air (hub.broadcast.relay): `reason` is no_bytes,
    silence or source_lost; its listeners were moved to the fallback mount."""
    type = "relay.dead_air"

    session_id: str
    mount: str
    reason: str
    at: datetime


@hookimpl
def register_event_types(register: Callable[[type[Event]], None]) -> None:
    """The hub's own event types, declared through the hook a plugin's go through (hub.plugins)."""
    for cls in (DeviceOnline, DeviceDegraded, DeviceOffline, DeliveryChanged, CommandFinished, RelayDeadAir):
        register(cls)


# -- in-process subscribers and publishing -------------------------------------------------------------
EventSelector = Iterable["str | type[Event]"] | None
Subscriber = Callable[[Event], None]
_subscribers: list[tuple[Subscriber, Callable[[Event], bool]]] = []
_lock = threading.Lock()


def selector(types: EventSelector) -> Callable[[Event], bool]:
    """Whether an event is among `types`: type names ("device.offline"), name prefixes
    ("device.*"), or classes (DeviceStateChanged: its subclasses too); None for every event. A
    name this hub does not declare is refused, so a typo does not subscribe to nothing."""
    if types is None:
        return lambda event: True
    names: set[str] = set()
    prefixes: list[str] = []
    classes: list[type[Event]] = []
    for t in types:
        if isinstance(t, type) and issubclass(t, Event):
            classes.append(t)
        elif isinstance(t, str) and t.endswith(".*"):
            prefixes.append(t[:-1])
        elif isinstance(t, str) and t in EVENT_TYPES:
            names.add(t)
        else:
            raise ValueError(f"unknown event type {t!r}; known: {', '.join(sorted(EVENT_TYPES))}")
    cls_tuple = tuple(classes)
    return lambda event: (event.type in names or isinstance(event, cls_tuple)
                          or any(event.type.startswith(p) for p in prefixes))


def subscribe(fn: Subscriber, types: EventSelector = None) -> Callable[[], None]:
    """Call `fn(event)` for every event published in this process (or those among `types`, see
    `selector`); returns an unsubscribe."""
    entry = (fn, selector(types))
    with _lock:
        _subscribers.append(entry)

    def unsubscribe() -> None:
        with _lock:
            if entry in _subscribers:
                _subscribers.remove(entry)
    return unsubscribe


def publish(event: Event, redis: Any = None, channel: str | None = None) -> None:
    publish_many([event], redis, channel)


def publish_many(batch: list[Event], redis: Any = None, channel: str | None = None) -> None:
    """`publish` for each event, with one Redis round trip for the whole batch: an ingest
    batch can bring thousands of transitions (a province's devices coming back after an outage).
    `channel` is `channel_name(settings)`."""
    if not batch:
        return
    for event in batch:
        if not isinstance(event, Event):
            raise TypeError(f"publish takes hub.events.Event instances, not {type(event).__name__}")
    with _lock:
        subs = list(_subscribers)
    for event in batch:
        for fn, wanted in subs:
            if not wanted(event):
                continue
            try:
                fn(event)
            except Exception:  # one bad subscriber must not stop the others or the publisher
                log.exception("event subscriber %r failed", fn)
    if redis is not None and channel:
        try:
            pipe = redis.pipeline(transaction=False)
            for event in batch:
                pipe.publish(channel, event.to_json())
            pipe.execute()
        except Exception as exc:  # events are a courtesy to other processes; state is in the database
            log.warning("could not publish %d events to Redis: %s", len(batch), exc)


# -- other processes: reading the channel ---------------------------------------------------------------
def listen(redis: Any, channel: str, types: EventSelector = None, *, stop: threading.Event | None = None,
           poll_s: float = 1.0) -> Iterator[Event]:
    """Typed events from the Redis channel (`channel_name(settings)`), those among `types` only,
    until `stop` is set or the caller stops iterating. It subscribes on the first `next()`:
    Redis pub/sub keeps nothing for a subscriber that is not there yet. A type this hub does not
    know is skipped (a newer hub published it); a malformed message is logged and skipped; a
    Redis that goes away is waited for."""
    wanted = selector(types)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    down = False
    try:
        while stop is None or not stop.is_set():
            try:
                message = pubsub.get_message(timeout=poll_s)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                # redis-py connects again and subscribes again on the next call; what was published
                # meanwhile is lost, as pub/sub loses it for any subscriber away
                if not down:
                    log.warning("lost Redis while listening to %s (%s); trying again", channel, exc)
                down = True
                time.sleep(poll_s)
                continue
            if down:
                log.info("listening to %s again", channel)
                down = False
            if message is None or message.get("type") != "message":
                continue
            try:
                event = Event.from_json(message["data"])
            except UnknownEventType as exc:
                log.debug("skipped an event on %s: %s", channel, exc)
                continue
            except EventError as exc:
                log.warning("malformed event on %s skipped: %s", channel, exc)
                continue
            if wanted(event):
                yield event
    finally:
        pubsub.close()
