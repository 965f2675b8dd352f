"""What goes out for one hub event: an envelope with an id and a sequence number, the same for
every destination of an output, so a receiver can put events in order and drop duplicates.

    {"id": "0193a…", "sequence": 42, "type": "device.offline", "emitted_at": "2024-12-06T04:55:00+00:00",
     "event": {"type": "device.offline", "device_id": "spk-001", "state": "offline", …}}

`event` is the event's wire form (hub.events.Event.to_dict); its fields are only ever added to.
"""
from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub.output import EVENT_NAME, event_type

# Sequence numbers are reserved in blocks written ahead to the state file: a crash skips the rest
# of a block (a gap) but never reuses a number; a clean close() writes the exact next number.
SEQUENCE_BLOCK = 1000


@dataclass(frozen=True)
class Envelope:
    id: str
    sequence: int
    type: str
    emitted_at: str
    event: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "sequence": self.sequence, "type": self.type, "emitted_at": self.emitted_at,
                "event": self.event}

    def body(self) -> bytes:
        """The JSON bytes sent (and signed): compact, UTF-8, Vietnamese left as it is."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Envelope:
        return cls(id=str(data["id"]), sequence=int(data["sequence"]), type=str(data["type"]),
                   emitted_at=str(data["emitted_at"]), event=dict(data["event"]))


def _wire_form(event: Any) -> dict[str, Any]:
    if isinstance(event, Mapping):
        return dict(event)
    to_dict = getattr(event, "to_dict", None)
    if not callable(to_dict):
        raise TypeError(f"not a hub event: {event!r:.100}")
    return to_dict()


class Sequencer:
    """Numbers envelopes 1, 2, 3… across restarts, from a small file in the state directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._next = self._read()
        self._reserved = self._next  # numbers below this are on disk as used

    def _read(self) -> int:
        try:
            return max(1, int(self.path.read_text(encoding="ascii").strip()))
        except FileNotFoundError:
            return 1
        except (ValueError, OSError) as exc:
            raise RuntimeError(f"sequence file {self.path} is unreadable ({exc}); fix or remove it") from None

    def _write(self, value: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{value}\n", encoding="ascii")
        os.replace(tmp, self.path)

    def next(self) -> int:
        with self._lock:
            if self._next >= self._reserved:
                self._reserved = self._next + SEQUENCE_BLOCK
                self._write(self._reserved)
            n = self._next
            self._next += 1
            return n

    def close(self) -> None:
        with self._lock:
            self._write(self._next)
            self._reserved = self._next

    def wrap(self, event: Any) -> Envelope:
        """The envelope of one hub event (a typed event or its dict form)."""
        data = _wire_form(event)
        return Envelope(id=str(uuid.uuid4()), sequence=self.next(), type=event_type(data),
                        emitted_at=datetime.now(UTC).isoformat(), event=data)


class EventFilter:
    """Which event types a destination wants: exact names ("device.offline"), prefixes
    ("device.*") or "*" for all, present and future."""

    def __init__(self, patterns: Iterable[str] | None) -> None:
        self.patterns = tuple(patterns or ("*",))
        self._all = "*" in self.patterns
        self._names = {p for p in self.patterns if not p.endswith(".*")}
        self._prefixes = tuple(p[:-1] for p in self.patterns if p.endswith(".*"))

    def __call__(self, type_name: str) -> bool:
        return self._all or type_name in self._names or type_name.startswith(self._prefixes)


def check_pattern(pattern: str) -> str | None:
    """Why `pattern` is not an event type name, a "name.*" prefix or "*"; None when it is."""
    if pattern == "*" or EVENT_NAME.fullmatch(pattern.removesuffix(".*")):
        return None
    return f"{pattern!r} is not an event type (\"device.offline\"), a prefix (\"device.*\") or \"*\""


_TOPIC_SEPARATORS = re.compile(r"[.:]")


def topic_for(prefix: str, type_name: str) -> str:
    """`hub/events` + `device.offline` → `hub/events/device/offline`."""
    return f"{prefix.rstrip('/')}/{_TOPIC_SEPARATORS.sub('/', type_name)}"
