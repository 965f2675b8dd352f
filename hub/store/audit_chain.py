"""The audit chain's key and its marker, kept with the tables they protect.

The store writes the `audit_keyed_from` marker when it makes or upgrades a schema (hub.store.db),
so what the marker is and how the head row is locked live here, below hub.access.audit, which
appends and verifies entries.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.store.models import AuditHead, Meta

KEYED_FROM = "audit_keyed_from"  # meta row: "<first keyed seq> <key id> <mac>"


class AuditError(RuntimeError):
    """The audit log cannot be appended to (its head row is missing: run `hub init-db`)."""


_default_source: Callable[[], bytes] | None = None


def use_default_key(source: Callable[[], bytes] | None) -> None:
    """The key for callers without a session (hub.runtime sets it; sessions use their Database's)."""
    global _default_source
    _default_source = source


def _default_key() -> bytes:
    if _default_source is None:
        raise AuditError("no audit key: build a hub.runtime.Runtime first")
    return _default_source()


def _key(session: Session) -> bytes:
    db = session.info.get("hub.store.db")
    source = getattr(db, "audit_key", None) or _default_source
    if source is None:
        raise AuditError("no audit key for this database: open it through a hub.runtime.Runtime")
    return source()


def key_id(key: bytes) -> str:
    """Names a key without revealing it, so that a wrong key is told from a rewritten chain."""
    return hmac.new(key, b"hub-audit-key-id", hashlib.sha256).hexdigest()[:16]


def _marker_mac(key: bytes, seq: int, kid: str) -> str:
    return hmac.new(key, f"hub-audit-keyed-from:{seq}:{kid}".encode("ascii"), hashlib.sha256).hexdigest()


def start_keyed_chain(session: Session) -> None:
    """Mark the entries from the next one on as keyed (a new database: all of them; an upgraded
    one: those after its last plain entry). Done once; never moves afterwards."""
    head = _lock_head(session)
    if session.get(Meta, KEYED_FROM) is not None:
        return
    session.add(Meta(key=KEYED_FROM, value=marker_value(_key(session), head.seq + 1)))
    session.flush()


def marker_value(key: bytes, seq: int) -> str:
    """The `audit_keyed_from` meta value: entries from `seq` on are keyed with `key`."""
    kid = key_id(key)
    return f"{seq} {kid} {_marker_mac(key, seq, kid)}"


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


