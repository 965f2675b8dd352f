"""The audit log: who did what to which targets and when, append-only and tamper-evident.

Every entry stores the hash of the entry before it and its own hash,
HMAC-SHA256(audit key, prev_hash + canonical JSON of the entry), so that editing or deleting a
row breaks the chain at that row; the one-row `audit_head` holds the last link, so that a
deleted tail shows too. The key lives outside the database (hub.access.secret_key): someone who can
write the database but not read the key cannot recompute the links of rows they rewrote.
Entries written before the chain was keyed (databases older than schema 3) keep their plain
sha256 links; the meta row `audit_keyed_from` says, under the key's MAC, from which entry on
every link is keyed, so that it cannot be moved to pass off rewritten rows as old ones.
Appends are serialised across processes by locking the head row (SELECT … FOR UPDATE on
PostgreSQL; on SQLite by taking the database's write lock before reading it). `record` is the
only function that writes an entry; call it inside the transaction of the change it describes,
so that the change and its record commit or roll back together.

Tamper-evident is not tamper-proof: someone who holds the key can forge a consistent chain,
and someone who can write the database can still cut off the newest entries and point the head
at an older one. `hub audit head --export FILE` writes the current head; kept somewhere else,
`hub audit verify --head FILE` shows a cut tail (and, for the unkeyed part, a rewrite).
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from hub.access.actors import Actor
from hub.config import redact as _redact  # one masking for the audit log and `hub config show`
# The chain's key and its marker live in the store, which writes the marker when it makes or
# upgrades a schema; they are part of this module's interface.
from hub.store.audit_chain import (  # noqa: F401
    KEYED_FROM, AuditError, _default_key, _key, _lock_head, _marker_mac, key_id, marker_value,
    start_keyed_chain,
    use_default_key,
)
from hub.store.db import utcnow
from hub.store.models import AUDIT_GENESIS, Area, AuditEntry, AuditHead, Meta

HASHED_FIELDS = ("seq", "at", "actor", "via", "action", "object_type", "object_id", "area_paths", "detail")
KEYED_FIELDS = HASHED_FIELDS + ("actor_id",)  # a keyed link covers the account id too
EXPORT_FIELDS = ("seq", "at", "actor", "actor_id", "via", "action", "object_type", "object_id", "areas", "detail",
                 "prev_hash", "hash")


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds")


def canonical(entry: Any, fields: tuple[str, ...] = HASHED_FIELDS) -> bytes:
    """The bytes an entry's hash covers: its fields as sorted, compact JSON."""
    doc = {k: getattr(entry, k, None) for k in fields}
    doc["at"] = _iso(doc["at"])
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def plain_hash(prev_hash: str, entry: Any) -> str:
    """The link of an entry written before the chain was keyed."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(entry)).hexdigest()


def keyed_hash(key: bytes, prev_hash: str, entry: Any) -> str:
    return hmac.new(key, prev_hash.encode("ascii") + canonical(entry, KEYED_FIELDS), hashlib.sha256).hexdigest()


def link_hash(prev_hash: str, entry: Any, key: bytes | None = None) -> str:
    """The link the hub writes now: keyed with `key` (default: this process's audit key)."""
    return keyed_hash(key if key is not None else _default_key(), prev_hash, entry)


def _keyed_from(session: Session, key: bytes) -> tuple[int | None, str | None]:
    """(first keyed seq, None), or (None, what is wrong with the marker)."""
    row = session.get(Meta, KEYED_FROM)
    if row is None:
        return None, (f"the marker of the keyed chain (meta row {KEYED_FROM}) is missing: it is written when the "
                      "database is created or upgraded, so it was removed")
    parts = row.value.split()
    if len(parts) != 3 or not parts[0].isdigit():
        return None, f"the marker of the keyed chain (meta row {KEYED_FROM}) is unreadable: it was edited"
    seq, kid, mac = int(parts[0]), parts[1], parts[2]
    if kid != key_id(key):
        return None, (f"this process's audit key (id {key_id(key)}) is not the key the chain was written with "
                      f"(id {kid}): verify with the audit key of the hub's hosts (HUB_AUDIT_KEY or "
                      f"<state_dir>/audit_key), or the marker's key id was edited")
    if not hmac.compare_digest(mac, _marker_mac(key, seq, kid)):
        return None, (f"the marker of the keyed chain (meta row {KEYED_FROM}) does not match the audit key: it "
                      "was edited (to move the start of the keyed chain)")
    return seq, None


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


def check_key(session: Session) -> None:
    """AuditError unless this process holds the key the chain is written with: a host with
    another key would write links that no longer verify."""
    marker = session.get(Meta, KEYED_FROM)
    mine = key_id(_key(session))
    theirs = (marker.value.split() + ["?", "?"])[1] if marker is not None else mine
    if theirs != mine:
        raise AuditError(f"this process's audit key (id {mine}) is not the key the audit chain is written with "
                         f"(id {theirs}): give every hub process the same key (HUB_AUDIT_KEY, or the same "
                         "<state_dir>/audit_key file)")


def lock(session: Session) -> None:
    """Take the lock appends take (held until the transaction ends), to read and write state
    that must line up with the chain."""
    _lock_head(session)


def record(session: Session, actor: Actor | str, action: str, object_type: str, object_id: str | None = None,
           detail: Mapping[str, Any] | None = None, areas: Iterable[str] | None = None,
           via: str | None = None) -> AuditEntry:
    """Append one entry. `areas` are the area codes the action touched (default: the actor's
    own areas); readers limited to some subtrees see the entries touching them."""
    actor_id = None
    if isinstance(actor, Actor):
        name, via, actor_id = actor.name, via if via is not None else actor.via, actor.user_id
        if areas is None:
            areas = actor.areas or ()
    else:
        name, via = actor, via or ""
    head = _lock_head(session)
    key = _key(session)
    if session.get(Meta, KEYED_FROM) is None and head.seq == 0:  # made without a key at hand: key it now
        start_keyed_chain(session)
    check_key(session)
    entry = AuditEntry(seq=head.seq + 1, at=utcnow(), actor=name[:100], actor_id=actor_id, via=via[:40],
                       action=action, object_type=object_type,
                       object_id=None if object_id is None else str(object_id)[:100],
                       area_paths=_paths(session, areas or ()), detail=_plain(detail), prev_hash=head.hash)
    entry.hash = keyed_hash(key, entry.prev_hash, entry)
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
    keyed_from: int | None = None  # the first entry whose link is keyed

    def __str__(self) -> str:
        if not self.ok:
            where = f"at entry {self.broken_seq}" if self.broken_seq is not None else "(no entry named)"
            return f"chain broken {where}: {self.problem}"
        out = f"chain intact, {self.entries} entries, head {self.head}"
        if self.keyed_from is not None and self.keyed_from > 1:
            out += (f"; keyed from entry {self.keyed_from} (entries 1–{self.keyed_from - 1} were written before "
                    "the chain was keyed: plain hashes, which only an exported head vouches for)")
        return out


def verify(session: Session, exported: tuple[int, str] | None = None) -> Verdict:
    """Walk the chain from the first entry; report the first broken link. `exported` is a head
    (seq, hash) kept elsewhere (`hub audit head --export`): the chain must still pass through it."""
    key = _key(session)
    keyed_from, marker_problem = _keyed_from(session, key)
    if marker_problem is not None:
        return Verdict(False, 0, AUDIT_GENESIS, None, marker_problem)
    prev, expected = AUDIT_GENESIS, 1
    at_export = AUDIT_GENESIS if exported is not None and exported[0] == 0 else None
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
        if keyed_from is not None and e.seq >= keyed_from:
            intact = hmac.compare_digest(keyed_hash(key, e.prev_hash, e), e.hash)
        else:
            intact = plain_hash(e.prev_hash, e) == e.hash
        if not intact:
            problem = "its content does not match its hash (edited)"
            if keyed_from is not None and e.seq >= keyed_from and plain_hash(e.prev_hash, e) == e.hash:
                problem = (f"its hash is a plain sha256, not keyed as every entry from {keyed_from} on must be: "
                           "rewritten by someone without the audit key (or written by a hub process older than "
                           "schema 3 still running after the upgrade)")
            return Verdict(False, expected - 1, prev, e.seq, problem)
        if exported is not None and e.seq == exported[0]:
            at_export = e.hash
        prev, expected = e.hash, expected + 1
    count = expected - 1
    head = session.get(AuditHead, 1)
    if head is None:
        return Verdict(False, count, prev, None, "the audit_head row is missing")
    if head.seq != count or head.hash != prev:
        return Verdict(False, count, prev, count + 1,
                       f"the head records {head.seq} entries ending in {head.hash[:16]}…, the log ends at entry "
                       f"{count}: entries were removed from the end")
    if exported is not None:
        seq, digest = exported
        if seq > count:
            return Verdict(False, count, prev, count + 1,
                           f"the exported head is entry {seq} ({digest[:16]}…), the log ends at entry {count}: "
                           f"entries {count + 1}–{seq} were removed")
        if at_export != digest:
            return Verdict(False, count, prev, seq, f"entry {seq} is not the one exported ({digest[:16]}…): the log "
                                                    "was rewritten up to it")
    return Verdict(True, count, prev, keyed_from=keyed_from)


def current_head(session: Session) -> dict[str, Any]:
    """The head to keep elsewhere (`hub audit head --export`)."""
    head = session.get(AuditHead, 1)
    if head is None:
        raise AuditError("the audit log has no head row: run `hub init-db`")
    return {"seq": head.seq, "hash": head.hash, "exported_at": _iso(utcnow())}


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
          actor_id: int | None = None, action: str | None = None, object_type: str | None = None,
          object_id: str | None = None, area_path: str | None = None, since: datetime | None = None,
          until: datetime | None = None,
          newest_first: bool = True) -> Select[Any]:
    """Entries visible within `paths`, filtered. `action` ending in "." or "*" is a prefix."""
    stmt = select(AuditEntry).order_by(AuditEntry.seq.desc() if newest_first else AuditEntry.seq)
    cond = visible_to(paths)
    if cond is not None:
        stmt = stmt.where(cond)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor == actor)
    if actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
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
