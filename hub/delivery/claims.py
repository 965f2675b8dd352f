"""Who may still change a delivery row: the job that claimed it, and commands of a wide enough issuer.

A job claims the `queued` rows it loads (claimed_at, claimed_by = its rq job id) in the same
transaction that counts the attempt, before it publishes anything. From then on the device may
have the command, so:
* supersede leaves the row alone (hub.delivery.dispatch._supersede matches unclaimed rows only): a row
  the device played must not read `superseded`;
* the device's ack is accepted while the row is still `queued` (hub.delivery.states.finish_by_device):
  the answer can come back before the worker has written `sent`;
* another job does not send it too: a job claims only unclaimed rows or rows already its own.
  Recovery (hub.delivery.recovery) hands the rows of a job known dead to the job it enqueues instead.

Issuer scope: each command keeps the area paths its issuer could reach (Command.issuer_scope).
A command supersedes another only when its scope covers the other's: a commune operator's
`stop` never replaces the province's emergency in that commune, the province's replaces the
commune's.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, lazyload

from hub.store.batching import chunks
from hub.store.db import utcnow
from hub.store.models import Delivery, DeliveryState, Device

EVERYWHERE = ["/"]  # the scope of an unrestricted issuer: every area path starts with "/"


def job_token() -> str:
    """The claim token of the code running now: its rq job id, or (outside rq: tests, tools) one
    per process and thread, so that retries of the same call find their rows again."""
    from rq import get_current_job

    job = get_current_job()
    if job is not None:
        return str(job.id)
    return f"local-{os.getpid()}-{threading.get_ident()}"


def claim(s: Session, delivery_ids: Sequence[int], token: str) -> list[Any]:
    """Claim the rows of `delivery_ids` still `queued` and free (or already ours); returns them
    as (Delivery, Device) pairs. The caller's transaction must commit before anything is sent."""
    now = utcnow()
    rows: list[Any] = []
    for chunk in chunks(delivery_ids):
        s.execute(update(Delivery).where(Delivery.id.in_(chunk), Delivery.state == DeliveryState.QUEUED,
                                         or_(Delivery.claimed_by.is_(None), Delivery.claimed_by == token))
                  .values(claimed_at=now, claimed_by=token).execution_options(synchronize_session=False))
        # device_ref reads columns only: don't load each device's area, tags and status
        rows += s.execute(select(Delivery, Device).join(Device, Device.id == Delivery.device_id)
                          .options(lazyload(Device.area), lazyload(Device.tags), lazyload(Device.status))
                          .where(Delivery.id.in_(chunk), Delivery.state == DeliveryState.QUEUED,
                                 Delivery.claimed_by == token)
                          .execution_options(populate_existing=True)).all()
    return rows


def issuer_scope(session: Session, actor: Any) -> list[str]:
    """The area paths `actor` may reach, as stored on a command it issues."""
    paths = actor.area_paths(session)
    return list(EVERYWHERE) if paths is None else sorted(paths)


def covers(wider: list[str] | None, narrower: list[str] | None) -> bool:
    """Whether every area of scope `narrower` lies inside scope `wider` (None: every area)."""
    wide = wider or EVERYWHERE
    return all(any(p.startswith(w) for w in wide) for p in (narrower or EVERYWHERE))
