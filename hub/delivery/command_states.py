"""Where a command stands as a whole, said in one word, from its own columns and its deliveries':

- `cancelled`: cancelled before its start_at (its unsent deliveries ended superseded);
- `waiting`: it has a start_at the scheduler has not reached yet;
- `running`: some delivery is still scheduled, queued or sent;
- `done`: every delivery ended (acked, failed, expired, unsupported or superseded).

The words differ from the delivery states on purpose: "done" says nothing about success, which the
deliveries' counts say. The same rule is written twice, as SQL for lists filtered by state and in
Python for one command with its counts; tests/test_command_filters.py checks they agree.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, not_, or_

from hub.store.models import ACTIVE_STATES, Command, Delivery

CANCELLED, WAITING, RUNNING, DONE = "cancelled", "waiting", "running", "done"
COMMAND_STATES = (WAITING, RUNNING, DONE, CANCELLED)


def command_state(cmd: Command, counts: dict[str, int]) -> str:
    """The word for one command, given its deliveries counted by state (those the caller sees)."""
    if cmd.cancelled_at is not None:
        return CANCELLED
    if cmd.start_at is not None and cmd.released_at is None:
        return WAITING
    return RUNNING if any(counts.get(s, 0) for s in ACTIVE_STATES) else DONE


def state_condition(state: str, visible: ColumnElement[bool] | None = None) -> ColumnElement[bool]:
    """SQL condition on Command: it is in `state`. `visible`, a condition on Delivery, limits the
    deliveries that count (a caller who did not issue the command sees those in its areas)."""
    cancelled = Command.cancelled_at.is_not(None)
    waiting = and_(Command.cancelled_at.is_(None), Command.start_at.is_not(None), Command.released_at.is_(None))
    if state == CANCELLED:
        return cancelled
    if state == WAITING:
        return waiting
    conds: list[Any] = [Delivery.command_id == Command.id, Delivery.state.in_(ACTIVE_STATES)]
    if visible is not None:
        conds.append(visible)
    active = exists().where(*conds)
    settled = and_(not_(cancelled), not_(waiting))
    if state == RUNNING:
        return and_(settled, active)
    if state == DONE:
        return and_(settled, not_(active))
    raise ValueError(f"unknown command state {state!r}; one of {', '.join(COMMAND_STATES)}")
