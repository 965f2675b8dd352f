"""What the webhook and MQTT outputs share: every event wrapped once in an envelope (one id, one
sequence number), handed to the lanes of the destinations that want its type; dead letters and
their replay; health.

The runner calls `handle(event)` from its own thread and `run_periodic(now)` every
`manifest.interval_s`; both return quickly. The runner (or the API) may also call
`dead_letters()`, `replay()`, `discard()` and `status()`, and `close()` when it stops.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from hub.contract import Health
from hub.output import Output, OutputError, event_type

from hub_output_events.envelope import Envelope, EventFilter, Sequencer, check_pattern
from hub_output_events.lane import Lane
from hub_output_events.storage import DeadLetterStore

log = logging.getLogger(__name__)

DESTINATION_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class CommonSchema(Schema):
    """Settings every event-stream output has."""

    # Where the sequence counter, dead letters and pending events live. The runner passes
    # <hub state_dir>/outputs/<entry name>; left out, <hub state_dir>/outputs/<plugin name>.
    state_dir = fields.Str(load_default=None, allow_none=True)
    max_queue = fields.Int(load_default=10_000, validate=validate.Range(min=1, max=1_000_000))
    max_dead_letters = fields.Int(load_default=10_000, validate=validate.Range(min=1, max=1_000_000))
    backoff_initial_s = fields.Float(load_default=1.0, validate=validate.Range(min=0.01, max=3600))
    backoff_max_s = fields.Float(load_default=300.0, validate=validate.Range(min=0.01, max=86400))


def check_events(value: list[str]) -> None:
    problems = [p for p in map(check_pattern, value) if p]
    if problems:
        raise ValidationError(problems[0])


def events_field() -> fields.List:
    """Which event types a destination gets: names, "device.*" prefixes, "*" (the default)."""
    return fields.List(fields.Str(), load_default=lambda: ["*"], validate=[validate.Length(min=1), check_events])


class StreamOutput(Output):
    """Base of the event-stream outputs; a subclass builds its lanes in `_build_lanes()`."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self.lanes: dict[str, Lane] = {}
        self.filters: dict[str, EventFilter] = {}
        self.state_dir = self._state_dir()
        self.store = DeadLetterStore(self.state_dir, int(self.config.get("max_dead_letters", 10_000)))
        self.sequencer = Sequencer(self.state_dir / "sequence")

    def _state_dir(self) -> Path:
        configured = self.config.get("state_dir")
        if configured:
            return Path(configured)
        from hub.config import get_settings  # only when the runner did not say: read the hub's own

        return Path(get_settings().state_dir) / "outputs" / self.manifest.name

    def _build_lanes(self) -> list[tuple[Lane, EventFilter]]:
        raise NotImplementedError

    def start(self) -> None:
        """Start the lanes (handle() does it on the first event)."""
        with self._lock:
            if self._closed:
                raise OutputError(f"output {self.manifest.name} is closed")
            if self._started:
                return
            for lane, wanted in self._build_lanes():
                self.lanes[lane.name] = lane
                self.filters[lane.name] = wanted
                lane.start()
            self._started = True

    def handle(self, event: Any) -> None:
        if self._closed:
            raise OutputError(f"output {self.manifest.name} is closed", transient=True)
        if not self._started:
            self.start()
        name = event_type(event)
        targets = [lane for key, lane in self.lanes.items() if self.filters[key](name)]
        if not targets:
            return
        envelope = self.sequencer.wrap(event)
        for lane in targets:
            lane.offer(envelope)

    def run_periodic(self, now: datetime) -> None:
        """Carry out replays another process asked for (DeadLetterStore.request_replay)."""
        if not self._started:
            self.start()
        requested = self.store.take(requested_only=True)
        if requested:
            self._requeue(requested)
        for lane in self.lanes.values():
            if not lane.alive and not self._closed:
                log.error("%s: lane %s is not running", self.manifest.name, lane.name)

    # -- dead letters: what the API shows and replays ----------------------------------------------
    def dead_letters(self, destination: str | None = None) -> list[dict[str, Any]]:
        """Events a destination never took, oldest first: {"dead_id", "destination", "dead_at",
        "attempts", "reason", "replay_requested", "envelope"}."""
        return self.store.list(destination)

    def replay(self, ids: set[str] | list[str] | None = None, destination: str | None = None) -> int:
        """Queue dead letters again (those with these dead_ids, of this destination, or all); they
        go after what is queued now, with their original id and sequence. Returns how many."""
        if not self._started:
            self.start()
        taken = self.store.take(set(ids) if ids is not None else None, destination)
        return self._requeue(taken)

    def request_replay(self, ids: set[str] | list[str] | None = None, destination: str | None = None) -> int:
        """Mark dead letters for the running output to replay on its next run_periodic: for a
        process that does not hold it (the API), on an instance built with the same state_dir.
        Returns how many were marked."""
        return self.store.request_replay(set(ids) if ids is not None else None, destination)

    def discard(self, ids: set[str] | list[str] | None = None, destination: str | None = None) -> int:
        """Delete dead letters the operator has dealt with otherwise. Returns how many."""
        return len(self.store.take(set(ids) if ids is not None else None, destination))

    def _requeue(self, records: list[dict[str, Any]]) -> int:
        orphans = []
        count = 0
        for record in sorted(records, key=lambda r: r["envelope"].get("sequence", 0)):
            lane = self.lanes.get(record.get("destination", ""))
            if lane is None:  # the destination was removed from the configuration since
                orphans.append(record)
                continue
            lane.offer(Envelope.from_dict(record["envelope"]))
            count += 1
        self.store.put_back([{**r, "replay_requested": False} for r in orphans])
        return count

    # -- health ----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Per destination: state, queued, delivered, failures, last error; dead letters by destination."""
        return {"destinations": [lane.status() for lane in self.lanes.values()],
                "dead_letters": self.store.count(), "dead_letters_dropped": self.store.dropped}

    def health(self) -> Health:
        status = self.status()
        parts, ok = [], True
        for lane in status["destinations"]:
            text = f"{lane['destination']}: {lane['state']}, {lane['queued']} queued"
            ok = ok and not lane["state"].startswith("failed")
            if lane["consecutive_failures"]:
                ok = False
                text += f", {lane['consecutive_failures']} failed attempts in a row ({lane['last_error']})"
            parts.append(text)
        dead = sum(status["dead_letters"].values())
        if dead:
            parts.append(f"{dead} dead letters ({', '.join(f'{k}: {v}' for k, v in status['dead_letters'].items())})"
                         " to replay or discard")
        return Health(ok, "; ".join(parts) or "not started")

    def close(self, timeout: float = 10.0) -> None:
        """Stop the lanes, saving what is still queued for the next start."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for lane in self.lanes.values():
            lane.stop(timeout)
        self._close_senders()
        self.sequencer.close()

    def _close_senders(self) -> None:
        """Subclasses release connections here."""
