"""Files in the output's state directory: the dead letters, and events still queued when the
output stopped.

Dead letters are JSON lines, one per event a destination did not take after every retry (or
refused outright with a 4xx). The operator sees them (`dead_letters()`, the API) and replays them.
Another process (the API) may read the file and ask for a replay (`request_replay`), which the
running output carries out on its next `run_periodic`; an advisory lock (flock) keeps the two
from writing over each other.

Record: {"dead_id", "destination", "dead_at", "attempts", "reason", "replay_requested", "envelope"}.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub_output_events.envelope import Envelope

log = logging.getLogger(__name__)


def _write_lines(path: Path, records: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_lines(path: Path) -> list[dict[str, Any]]:
    records = []
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except ValueError:  # a line cut short by a crash: keep the rest readable
                    log.warning("%s:%d is not JSON; skipped", path, number)
    except FileNotFoundError:
        pass
    return records


class DeadLetterStore:
    def __init__(self, state_dir: Path, max_records: int = 10_000) -> None:
        self.path = state_dir / "dead_letters.jsonl"
        self._lock_path = state_dir / "dead_letters.lock"
        self.max_records = max_records
        self.dropped = 0  # the oldest records pushed out by max_records since start
        self._approx_count: int | None = None  # lines in the file, as this process last knew
        self._counted: tuple[tuple[int, int], dict[str, int]] | None = None  # (file stat, count())
        self._thread_lock = threading.Lock()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self._lock_path, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    def add(self, destination: str, envelope: Envelope, attempts: int, reason: str) -> dict[str, Any]:
        record = {"dead_id": uuid.uuid4().hex, "destination": destination,
                  "dead_at": datetime.now(UTC).isoformat(), "attempts": attempts, "reason": reason[:1000],
                  "replay_requested": False, "envelope": envelope.to_dict()}
        with self._locked():
            if self._approx_count is None:
                self._approx_count = len(_read_lines(self.path))
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            self._approx_count += 1
            # An append is cheap; trimming rewrites the file, so it happens once the store is
            # over its limit, and takes it down to nine tenths (a burst of "queue full" events
            # arrives on the hub's own thread, in handle())
            if self._approx_count > self.max_records:
                records = _read_lines(self.path)
                cut = max(0, len(records) - self.max_records * 9 // 10)
                if cut:
                    self.dropped += cut
                    log.error("dead letters over %d: the %d oldest dropped", self.max_records, cut)
                    _write_lines(self.path, records[cut:])
                self._approx_count = len(records) - cut
        return record

    def list(self, destination: str | None = None) -> list[dict[str, Any]]:
        """The dead letters, oldest first (of one destination, or all)."""
        with self._locked():
            records = _read_lines(self.path)
        return [r for r in records if destination is None or r.get("destination") == destination]

    def count(self) -> dict[str, int]:
        """Dead letters by destination; read again only when the file changed (health asks often)."""
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            return {}
        if self._counted is not None and self._counted[0] == stamp:
            return dict(self._counted[1])
        counts: dict[str, int] = {}
        for r in self.list():
            counts[r.get("destination", "?")] = counts.get(r.get("destination", "?"), 0) + 1
        self._counted = (stamp, counts)
        return dict(counts)

    def _select(self, ids: set[str] | None, destination: str | None) -> Callable[[dict[str, Any]], bool]:
        return lambda r: ((ids is None or r.get("dead_id") in ids)
                          and (destination is None or r.get("destination") == destination))

    def take(self, ids: set[str] | None = None, destination: str | None = None,
             requested_only: bool = False) -> list[dict[str, Any]]:
        """Remove and return the chosen records (all when neither ids nor destination is given)."""
        chosen = self._select(ids, destination)
        with self._locked():
            records = _read_lines(self.path)
            taken = [r for r in records if chosen(r) and (not requested_only or r.get("replay_requested"))]
            if taken:
                keep = [r for r in records if not any(r is t for t in taken)]
                _write_lines(self.path, keep)
                self._approx_count = len(keep)
        return taken

    def request_replay(self, ids: set[str] | None = None, destination: str | None = None) -> int:
        """Mark records for the running output to replay on its next run_periodic (for a process
        that does not hold the output, such as the API); returns how many were marked."""
        chosen = self._select(ids, destination)
        with self._locked():
            records = _read_lines(self.path)
            marked = 0
            for r in records:
                if chosen(r) and not r.get("replay_requested"):
                    r["replay_requested"] = True
                    marked += 1
            if marked:
                _write_lines(self.path, records)
        return marked

    def put_back(self, records: list[dict[str, Any]]) -> None:
        """Records taken for a replay that cannot go ahead (their destination is gone)."""
        if not records:
            return
        with self._locked():
            _write_lines(self.path, [*records, *_read_lines(self.path)])
            self._approx_count = None


class PendingFile:
    """Envelopes still queued for one destination when the output stopped, sent first when it
    starts again, so a restart loses nothing that was handed over."""

    def __init__(self, state_dir: Path, destination: str) -> None:
        self.path = state_dir / "pending" / f"{destination}.jsonl"

    def save(self, envelopes: list[Envelope]) -> None:
        if not envelopes:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existing = _read_lines(self.path)
        _write_lines(self.path, [*existing, *(e.to_dict() for e in envelopes)])

    def load(self) -> list[Envelope]:
        """What was saved, removed from disk (the caller queues it again)."""
        records = _read_lines(self.path)
        envelopes = []
        for r in records:
            try:
                envelopes.append(Envelope.from_dict(r))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("%s: an unreadable pending event skipped (%s)", self.path, exc)
        if records:
            self.path.unlink(missing_ok=True)
        return envelopes
