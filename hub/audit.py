"""The audit log: who did what to which targets and when, append-only and tamper-evident.

Every entry stores the hash of the entry before it and its own hash,
sha256(prev_hash + canonical JSON of the entry), so that editing or deleting a row breaks the
chain at that row; the one-row `audit_head` holds the last link, so that a deleted tail shows
too. Appends are serialised across processes by locking that row (SELECT … FOR UPDATE on
PostgreSQL; on SQLite by taking the database's write lock before reading it). `record` is the
only function that writes an entry; call it inside the transaction of the change it describes,
so that the change and its record commit or roll back together.

Tamper-evident is not tamper-proof: someone able to rewrite the whole table and the head can
forge a consistent chain. `hub audit verify` prints the head hash; keeping that line somewhere
else (a ticket, a signed e-mail) makes a rewritten history detectable later.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session

from hub.auth import Actor
from hub.db import utcnow
from hub.models import AUDIT_GENESIS, Area, AuditEntry, AuditHead

HASHED_FIELDS = ("seq", "at", "actor", "via", "action", "object_type", "object_id", "area_paths", "detail")
EXPORT_FIELDS = ("seq", "at", "actor", "via", "action", "object_type", "object_id", "areas", "detail",
                 "prev_hash", "hash")


class AuditError(RuntimeError):
    """The audit log cannot be appended to (its head row is missing: run `hub init-db`)."""


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds")


def canonical(entry: Any) -> bytes:
    """The bytes an entry's hash covers: its fields as sorted, compact JSON."""
    doc = {k: getattr(entry, k) for k in HASHED_FIELDS}
    doc["at"] = _iso(doc["at"])
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def link_hash(prev_hash: str, entry: Any) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(entry)).hexdigest()


def _plain(detail: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Detail as the database will hand it back (JSON types only), so the hash verifies later."""
    if detail is None:
        return None
    return json.loads(json.dumps(detail, default=str, ensure_ascii=False, allow_nan=False))


def _paths(session: Session, codes: Iterable[str]) -> str:
    codes = sorted(set(codes))
    if not codes:
        return ""
    found = sorted(session.scalars(select(Area.path).where(Area.code.in_(codes))))
    return "|" + "|".join(found) + "|" if found else ""


def _lock_head(session: Session) -> AuditHead:
    if session.get_bind().dialect.name == "sqlite":
        # SQLite takes its write lock at the first write of a transaction, and a snapshot read
        # before that may be stale by then: write first, then read the head under the lock.
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq))
        stmt = select(AuditHead).where(AuditHead.id == 1)
    else:
        stmt = select(AuditHead).where(AuditHead.id == 1).with_for_update()
    head = session.scalars(stmt.execution_options(populate_existing=True)).first()
    if head is None:
        raise AuditError("the audit log has no head row: run `hub init-db`")
    return head


def record(session: Session, actor: Actor | str, action: str, object_type: str, object_id: str | None = None,
           detail: Mapping[str, Any] | None = None, areas: Iterable[str] | None = None,
           via: str | None = None) -> AuditEntry:
    """Append one entry. `areas` are the area codes the action touched (default: the actor's
    own areas); readers limited to some subtrees see the entries touching them."""
    if isinstance(actor, Actor):
        name, via = actor.name, via if via is not None else actor.via
        if areas is None:
            areas = actor.areas or ()
    else:
        name, via = actor, via or ""
    head = _lock_head(session)
    entry = AuditEntry(seq=head.seq + 1, at=utcnow(), actor=name[:100], via=via[:40], action=action,
                       object_type=object_type, object_id=None if object_id is None else str(object_id)[:100],
                       area_paths=_paths(session, areas or ()), detail=_plain(detail), prev_hash=head.hash)
    entry.hash = link_hash(entry.prev_hash, entry)
    session.add(entry)
    head.seq, head.hash = entry.seq, entry.hash
    session.flush()
    return entry


# -- verification ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    ok: bool
    entries: int
    head: str
    broken_seq: int | None = None
    problem: str | None = None

    def __str__(self) -> str:
        if self.ok:
            return f"chain intact, {self.entries} entries, head {self.head}"
        return f"chain broken at entry {self.broken_seq}: {self.problem}"


def verify(session: Session) -> Verdict:
    """Walk the chain from the first entry; report the first broken link."""
    prev, expected = AUDIT_GENESIS, 1
    table = AuditEntry.__table__
    rows = session.execute(select(table).order_by(table.c.seq).execution_options(yield_per=1000))
    for row in rows:
        e = _Row(row._mapping)
        if e.seq != expected:
            what = "is missing" if e.seq > expected else "appears twice"
            return Verdict(False, expected - 1, prev, expected, f"entry {expected} {what} (next is {e.seq})")
        if e.prev_hash != prev:
            return Verdict(False, expected - 1, prev, e.seq, f"its prev_hash does not match the hash of entry "
                                                             f"{e.seq - 1} (that entry was edited or replaced)")
        if link_hash(e.prev_hash, e) != e.hash:
            return Verdict(False, expected - 1, prev, e.seq, "its content does not match its hash (edited)")
        prev, expected = e.hash, expected + 1
    count = expected - 1
    head = session.get(AuditHead, 1)
    if head is None:
        return Verdict(False, count, prev, None, "the audit_head row is missing")
    if head.seq != count or head.hash != prev:
        return Verdict(False, count, prev, count + 1,
                       f"the head records {head.seq} entries ending in {head.hash[:16]}…, the log ends at entry "
                       f"{count}: entries were removed from the end")
    return Verdict(True, count, prev)


class _Row:
    def __init__(self, mapping: Mapping[str, Any]) -> None:
        self.__dict__.update(mapping)


# -- reading --------------------------------------------------------------------------------------
def codes_of(area_paths: str) -> list[str]:
    return [p.rstrip("/").rsplit("/", 1)[-1] for p in area_paths.split("|") if p]


def entry_dict(e: Any) -> dict[str, Any]:
    out = {k: getattr(e, k) for k in EXPORT_FIELDS if k != "areas"}
    out["areas"] = codes_of(e.area_paths)
    return out


def visible_to(paths: Iterable[str] | None) -> Any:
    """SQL condition: the entry touched one of `paths`' subtrees; None when unrestricted.
    An entry that touched no area (a CLI import, a failed login of an unknown name) is visible
    to unrestricted readers only."""
    if paths is None:
        return None
    conds = [AuditEntry.area_paths.contains("|" + p, autoescape=True) for p in paths]
    return or_(*conds) if conds else AuditEntry.id.is_(None)


def query(session: Session, paths: Iterable[str] | None = None, *, actor: str | None = None,
          action: str | None = None, object_type: str | None = None, object_id: str | None = None,
          area_path: str | None = None, since: datetime | None = None, until: datetime | None = None,
          newest_first: bool = True) -> Select[Any]:
    """Entries visible within `paths`, filtered. `action` ending in "." or "*" is a prefix."""
    stmt = select(AuditEntry).order_by(AuditEntry.seq.desc() if newest_first else AuditEntry.seq)
    cond = visible_to(paths)
    if cond is not None:
        stmt = stmt.where(cond)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor == actor)
    if action is not None:
        if action.endswith(("*", ".")):
            stmt = stmt.where(AuditEntry.action.startswith(action.rstrip("*"), autoescape=True))
        else:
            stmt = stmt.where(AuditEntry.action == action)
    if object_type is not None:
        stmt = stmt.where(AuditEntry.object_type == object_type)
    if object_id is not None:
        stmt = stmt.where(AuditEntry.object_id == object_id)
    if area_path is not None:
        stmt = stmt.where(AuditEntry.area_paths.contains("|" + area_path, autoescape=True))
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    return stmt


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    raise TypeError(type(value).__name__)


def _csv_cell(value: Any) -> str:
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                                                      default=_json_default)
    # A cell starting with = + - @ is a formula to spreadsheet programs; a login name is
    # attacker-chosen, so quote such cells (the JSONL export stays byte-faithful).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export(entries: Iterable[AuditEntry], out: IO[str], fmt: str) -> int:
    """Write entries as JSON Lines (faithful: each line re-hashes to its `hash`) or CSV."""
    n = 0
    writer = None
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(EXPORT_FIELDS)
    elif fmt != "jsonl":
        raise ValueError(f"unknown export format {fmt!r} (jsonl or csv)")
    for e in entries:
        d = entry_dict(e)
        if writer is None:
            d["area_paths"] = e.area_paths  # so that the line can be re-hashed on its own
            out.write(json.dumps(d, ensure_ascii=False, default=_json_default, sort_keys=True) + "\n")
        else:
            d["at"] = _iso(d["at"])
            writer.writerow([_csv_cell(d[k]) for k in EXPORT_FIELDS])
        n += 1
    return n


def iter_all(session: Session, batch: int = 1000) -> Iterator[AuditEntry]:
    yield from session.scalars(select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=batch))


def to_text(entries: Iterable[AuditEntry], fmt: str) -> str:
    buf = io.StringIO()
    export(entries, buf, fmt)
    return buf.getvalue()


# -- configuration ----------------------------------------------------------------------------------
_SECRET_WORDS = ("password", "secret", "token", "key")


def _redact(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _redact(v, str(k)) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_redact(v) for v in value]
    if any(w in key.lower() for w in _SECRET_WORDS):
        return None if value in (None, "") else "<set>"
    if isinstance(value, str) and "://" in value and "@" in value:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(value)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            return urlunsplit(parts._replace(netloc=netloc))
    return value


def settings_snapshot(settings: Any) -> dict[str, Any]:
    """The settings as the audit log keeps them: secrets replaced by whether they are set."""
    from dataclasses import asdict

    return _plain(_redact(asdict(settings))) or {}


def record_config(session: Session, settings: Any, process: str) -> AuditEntry | None:
    """Append `config.change` when a process starts with settings other than those last recorded
    (the configuration lives in files and the environment, outside the hub's reach)."""
    snap = settings_snapshot(settings)
    snap.pop("source", None)
    _lock_head(session)  # before reading the last entry: two processes starting together record once
    last = session.scalars(select(AuditEntry).where(AuditEntry.action == "config.change")
                           .order_by(AuditEntry.seq.desc()).limit(1)).first()
    before = (last.detail or {}).get("settings", {}) if last else {}
    changed = sorted(k for k in set(snap) | set(before) if snap.get(k) != before.get(k))
    if last is not None and not changed:
        return None
    return record(session, f"process:{process}", "config.change", "config", getattr(settings, "source", None),
                  {"changed": changed, "settings": snap}, via="start")
