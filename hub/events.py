"""Events other parts of the hub subscribe to (a device went offline, came back…).

In-process subscribers are called directly; other processes (a console, an alerting output)
subscribe to the Redis channel `<queue>.events`, where each event is one JSON object.
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Event = dict[str, Any]
_subscribers: list[Callable[[Event], None]] = []
_lock = threading.Lock()


def subscribe(fn: Callable[[Event], None]) -> Callable[[], None]:
    """Call `fn(event)` for every event published in this process; returns an unsubscribe."""
    with _lock:
        _subscribers.append(fn)

    def unsubscribe() -> None:
        with _lock:
            if fn in _subscribers:
                _subscribers.remove(fn)
    return unsubscribe


def publish(event: Event, redis: Any = None, channel: str | None = None) -> None:
    publish_many([event], redis, channel)


def publish_many(batch: list[Event], redis: Any = None, channel: str | None = None) -> None:
    """`publish` for each event, with one Redis round trip for the whole batch: an ingest
    batch can bring thousands of transitions (a province's devices coming back after an outage)."""
    if not batch:
        return
    with _lock:
        subs = list(_subscribers)
    for event in batch:
        for fn in subs:
            try:
                fn(event)
            except Exception:  # one bad subscriber must not stop the others or the publisher
                log.exception("event subscriber %r failed", fn)
    if redis is not None and channel:
        try:
            pipe = redis.pipeline(transaction=False)
            for event in batch:
                pipe.publish(channel, json.dumps(event, default=str, ensure_ascii=False))
            pipe.execute()
        except Exception as exc:  # events are a courtesy to other processes; state is in the database
            log.warning("could not publish %d events to Redis: %s", len(batch), exc)
