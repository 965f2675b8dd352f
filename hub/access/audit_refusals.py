"""Refused writes in the audit log, without letting a refused caller flood it.

A 403 to a POST, PUT, PATCH or DELETE is an `access.denied` entry: who, which endpoint, what
was refused and why. Per actor (account id, or name for non-accounts) and endpoint, at most one
entry is written a minute: the first refusal writes at once, the ones after it within the
minute are counted in `audit_refusals`, and the next entry for that pair — the first refusal
after the minute — says how many refusals it stands for (`refused`) and since when
(`first_at`). Refusals are audited by authenticated actors only: the door in (login) has its
own failure entries.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from hub.access import audit
from hub.access.actors import Actor
from hub.store.db import utcnow
from hub.store.models import AuditEntry, AuditRefusal

WINDOW = timedelta(seconds=60)


def actor_key(actor: Actor) -> str:
    return f"user:{actor.user_id}" if actor.user_id is not None else f"name:{actor.name}"[:120]


def record_refusal(session: Session, actor: Actor, endpoint: str, method: str, path: str,
                   message: str) -> AuditEntry | None:
    """Count one refused write; returns the entry when one was written."""
    audit.lock(session)  # one refusal at a time: the count and the entry stay together
    now = utcnow()
    key = (actor_key(actor), endpoint[:120], method[:10])
    row = session.get(AuditRefusal, key, populate_existing=True)
    if row is not None and now - row.logged_at < WINDOW:
        row.pending += 1
        row.first_pending_at = row.first_pending_at or now
        row.last_pending_at = now
        return None
    detail: dict[str, Any] = {"method": method, "path": path[:300], "endpoint": endpoint,
                              "message": message[:500], "refused": 1, "first_at": now.isoformat(),
                              "last_at": now.isoformat()}
    if row is not None and row.pending:
        detail["refused"] += row.pending
        detail["first_at"] = (row.first_pending_at or now).isoformat()
    entry = audit.record(session, actor, "access.denied", "endpoint", endpoint, detail)
    if row is None:
        session.add(AuditRefusal(actor_key=key[0], endpoint=key[1], method=key[2], logged_at=now, pending=0))
    else:
        row.logged_at, row.pending, row.first_pending_at, row.last_pending_at = now, 0, None, None
    session.flush()
    return entry
