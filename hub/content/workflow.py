"""The editorial workflow: which action moves a content from which status, and who may take it.

draft → submitted → approved → published → archived; an approver may reject a submitted or
approved content with a reason (editing it makes it a draft again). A province administrator
may approve and publish in one step, for an emergency that cannot wait for a second person, and
an emergency fired in one step (EMERGENCY_ISSUERS, check_emergency) is published without one.
Every refusal names the rule it broke, so an editor knows what to do next. This module decides;
callers (API, CLI, source intake) apply the change and audit it.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from hub.access.actors import Actor
from hub.access.permissions import ADMINISTRATOR, APPROVER, COMMAND_SENDERS, EDITOR, describe
from hub.store.content_tables import ContentStatus as S
from hub.store.models import Area, Content


class WorkflowError(ValueError):
    """An action the workflow does not allow here; the message names the rule."""

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message)
        self.rule = rule  # a stable name for the rule, for API clients and tests


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[str]  # statuses it may start from
    target: str
    roles: frozenset[str]
    needs_reason: bool = False
    four_eyes: bool = False  # the author may not take it (unless an administrator)


TRANSITIONS: dict[str, Transition] = {t.action: t for t in (
    Transition("submit", frozenset({S.DRAFT}), S.SUBMITTED, frozenset({EDITOR, ADMINISTRATOR})),
    Transition("approve", frozenset({S.SUBMITTED}), S.APPROVED, frozenset({APPROVER, ADMINISTRATOR}),
               four_eyes=True),
    Transition("reject", frozenset({S.SUBMITTED, S.APPROVED}), S.REJECTED, frozenset({APPROVER, ADMINISTRATOR}),
               needs_reason=True),
    Transition("publish", frozenset({S.APPROVED}), S.PUBLISHED, frozenset({APPROVER, ADMINISTRATOR})),
    # the emergency path: one person, but only an administrator, and it is audited as such
    Transition("approve_and_publish", frozenset({S.DRAFT, S.SUBMITTED, S.APPROVED}), S.PUBLISHED,
               frozenset({ADMINISTRATOR})),
    Transition("archive", frozenset({S.DRAFT, S.REJECTED, S.APPROVED, S.PUBLISHED}), S.ARCHIVED,
               frozenset({EDITOR, APPROVER, ADMINISTRATOR})),
)}

EDITABLE = frozenset({S.DRAFT, S.SUBMITTED, S.REJECTED})  # an edit makes these a draft again
SENDABLE = frozenset({S.PUBLISHED})


def status_of(content: Content) -> str:
    """A content made before the workflow existed has no status: it was usable, so it counts as published."""
    return content.status or S.PUBLISHED


def check_area(session: Session, actor: Actor, content: Content, doing: str) -> None:
    """Raise WorkflowError unless the content's area lies within the actor's areas."""
    if actor.unrestricted:
        return
    if content.area_code is None:
        raise WorkflowError(f"{doing}: content {content.id} has no area, so only an account for every area "
                            f"may {doing} it", rule="area")
    area = session.get(Area, content.area_code)
    if area is None or not actor.may_touch(session, area.path):
        raise WorkflowError(f"{doing}: content {content.id} belongs to area {content.area_code}, outside the "
                            f"areas of {actor.name} ({', '.join(sorted(actor.areas or ()))})", rule="area")


def check(session: Session, actor: Actor, content: Content, action: str, reason: str | None = None) -> Transition:
    """The transition `action` names, if `actor` may take it on `content` now; else WorkflowError."""
    t = TRANSITIONS.get(action)
    if t is None:
        raise WorkflowError(f"unknown action {action!r}: one of {', '.join(TRANSITIONS)}", rule="action")
    if not actor.has_any(t.roles):
        raise WorkflowError(f"{action}: only {describe(t.roles)} may {action} a content "
                            f"({actor.name} is {describe(actor.roles)})", rule="role")
    status = status_of(content)
    if status not in t.sources:
        raise WorkflowError(f"{action}: content {content.id} is {status}; {action} applies only to a content that "
                            f"is {' or '.join(sorted(t.sources))}", rule="order")
    if t.needs_reason and not (reason or "").strip():
        raise WorkflowError(f"{action}: give a reason, so the author knows what to change", rule="reason")
    if t.four_eyes and ADMINISTRATOR not in actor.roles and content.created_by == actor.name:
        raise WorkflowError(f"{action}: {actor.name} wrote content {content.id}; another person must {action} it",
                            rule="four_eyes")
    check_area(session, actor, content, action)
    return t


def check_edit(session: Session, actor: Actor, content: Content) -> None:
    """Raise WorkflowError unless `actor` may edit `content` now (an edit makes it a draft)."""
    if not actor.has_any({EDITOR, ADMINISTRATOR}):
        raise WorkflowError(f"edit: only {describe({EDITOR, ADMINISTRATOR})} may edit a content", rule="role")
    status = status_of(content)
    if status not in EDITABLE:
        raise WorkflowError(f"edit: content {content.id} is {status}; only a draft, submitted or rejected content "
                            f"may be edited (archive it and write a new one)", rule="order")
    check_area(session, actor, content, "edit")


def check_sendable(content: Content) -> None:
    """Raise WorkflowError unless devices may be sent `content`: it must be published."""
    status = status_of(content)
    if status not in SENDABLE:
        raise WorkflowError(f"content {content.id} is {status}; only a published content may be sent to devices",
                            rule="unpublished")


# The emergency in one step (hub.broadcast.emergency): whoever may send commands to an area — an
# operator or an administrator, within their areas — may write an emergency bulletin for it that is
# published at once, without a second person's approval, and sent. A storm warning cannot wait for
# an approver to wake up; the price is that the one person is named in the audit entry
# `emergency.fire`, which states this rule. Editors and approvers may not: they write or approve
# contents but send nothing to devices, and firing is sending.
EMERGENCY_ISSUERS = COMMAND_SENDERS
EMERGENCY_RULE = ("emergency in one step: written, published and sent by one operator or administrator of the "
                  "area, without a second person's approval")


def check_emergency(actor: Actor) -> None:
    """Raise WorkflowError (rule role) unless `actor` may fire an emergency in one step."""
    if not actor.has_any(EMERGENCY_ISSUERS):
        raise WorkflowError(f"emergency: only {describe(EMERGENCY_ISSUERS)} may fire an emergency "
                            f"({actor.name} is {describe(actor.roles)})", rule="role")
    if actor.read_only:
        raise WorkflowError(f"emergency: this API token of {actor.name} is read-only", rule="role")
