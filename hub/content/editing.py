"""Writing and moving contents: create a draft, edit it (each edit a version), take workflow actions.

hub.content.workflow decides what is allowed; this module applies it, records a version per edit
and audits every change, in the caller's transaction. The API, the CLI and a source's intake all
come through here, so no door can skip a rule. Refusals are WorkflowError with a `rule`:
  role, area, order, reason, four_eyes (from the workflow), and here also
  area_required (a restricted account must say which area a content is for),
  unknown_area, stale (an edit based on an older version), invalid (the edited content would be
  invalid, e.g. a tts_text without body).

Who may read which content (`readable`): an account for every area reads everything; an account
restricted to some areas reads every content of those areas (and below), and the *published*
contents of the areas above them and those without an area (a commune sees the province's
bulletins once they are out, not the province's drafts).
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from hub.access import audit
from hub.access.actors import Actor
from hub.access.permissions import ADMINISTRATOR, EDITOR, describe
from hub.content.workflow import WorkflowError, check, check_edit, status_of
from hub.fleet.areas import under_any
from hub.schemas.content import ContentSchema
from hub.store.content_tables import ContentStatus as S
from hub.store.content_tables import ContentVersion
from hub.store.db import utcnow
from hub.store.models import Area, Content

# What an edit may change; the workflow columns change only through transition().
EDITABLE_FIELDS = ("title", "kind", "language", "body", "media", "category", "origin", "priority",
                   "valid_from", "valid_until", "area_code")
WRITERS = frozenset({EDITOR, ADMINISTRATOR})


def _plain(value: Any) -> Any:
    """A value as a version row's JSON keeps it."""
    return value.isoformat() if isinstance(value, datetime) else value


def check_area_code(session: Session, actor: Actor, code: str | None, doing: str) -> None:
    """Raise WorkflowError unless `actor` may write contents for area `code` (None: only an
    account for every area)."""
    if code is None:
        if not actor.unrestricted:
            raise WorkflowError(f"{doing}: give area_code: {actor.name} may write only for "
                                f"{', '.join(sorted(actor.areas or ()))}", rule="area_required")
        return
    area = session.get(Area, code)
    if area is None:
        raise WorkflowError(f"{doing}: unknown area {code}", rule="unknown_area")
    if not actor.may_touch(session, area.path):
        raise WorkflowError(f"{doing}: area {code} lies outside the areas of {actor.name} "
                            f"({', '.join(sorted(actor.areas or ()))})", rule="area")


def _validated(fields: Mapping[str, Any], doing: str) -> dict[str, Any]:
    """Check the whole content as the schema would (a kind needs its body or media…)."""
    raw = {k: _plain(v) for k, v in fields.items() if v is not None and k != "area_code"}
    try:
        return ContentSchema().load(raw)  # the body comes back normalised as the schema does it
    except ValidationError as exc:
        field, messages = next(iter(exc.normalized_messages().items()))
        raise WorkflowError(f"{doing}: {field}: {messages[0] if isinstance(messages, list) else messages}",
                            rule="invalid") from None


def create(session: Session, actor: Actor, data: Mapping[str, Any], note: str | None = None) -> Content:
    """A new draft (version 1) from ContentSchema-loaded `data`; area_code is required unless the
    actor is for every area. Audited as content.create."""
    if not actor.has_any(WRITERS):
        raise WorkflowError(f"create: only {describe(WRITERS)} may write a content "
                            f"({actor.name} is {describe(actor.roles)})", rule="role")
    fields = {k: v for k, v in data.items() if k in EDITABLE_FIELDS or k in ("source", "external_id", "geography")}
    check_area_code(session, actor, fields.get("area_code"), "create")
    now = utcnow()
    content = Content(id=data.get("id") or uuid.uuid4().hex, created_by=actor.name, created_at=now,
                      status=S.DRAFT, version=1, updated_at=now, updated_by=actor.name, **fields)
    session.add(content)
    session.flush()  # the version row's foreign key needs the content first
    session.add(ContentVersion(content_id=content.id, version=1, changed_by=actor.name, changed_at=now,
                               changes={k: [None, _plain(v)] for k, v in fields.items() if v is not None},
                               note=note or "created"))
    audit.record(session, actor, "content.create", "content", content.id,
                 {"kind": content.kind, "title": content.title, "area_code": content.area_code},
                 areas=[content.area_code] if content.area_code else None)
    return content


def edit(session: Session, actor: Actor, content: Content, changes: Mapping[str, Any], note: str | None = None,
         expected_version: int | None = None) -> dict[str, list[Any]]:
    """Apply `changes` (field → new value) as one new version; a submitted or rejected content
    becomes a draft again. `expected_version`: refuse (rule stale) if someone edited it since.
    Returns what changed, field → [before, after] (empty: nothing changed, no version made)."""
    check_edit(session, actor, content)
    if expected_version is not None and expected_version != (content.version or 1):
        raise WorkflowError(f"edit: content {content.id} is at version {content.version or 1}, not "
                            f"{expected_version}: someone changed it since you read it; reload and edit again",
                            rule="stale")
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise WorkflowError(f"edit: {', '.join(unknown)} cannot be edited (fields: {', '.join(EDITABLE_FIELDS)})",
                            rule="invalid")
    diff = {k: [_plain(getattr(content, k)), _plain(v)] for k, v in changes.items() if getattr(content, k) != v}
    if not diff:
        return {}
    if "area_code" in diff:
        check_area_code(session, actor, changes["area_code"], "edit")
    loaded = _validated({**{k: getattr(content, k) for k in EDITABLE_FIELDS}, **changes}, "edit")
    before = status_of(content)
    for key in diff:
        setattr(content, key, loaded["body"] if key == "body" and loaded.get("body") else changes[key])
    now = utcnow()
    content.version = (content.version or 1) + 1
    content.updated_at, content.updated_by = now, actor.name
    if before in (S.SUBMITTED, S.REJECTED):  # what an approver saw is not what is there now
        content.status = S.DRAFT
    session.add(ContentVersion(content_id=content.id, version=content.version, changed_by=actor.name,
                               changed_at=now, changes=diff, note=note))
    audit.record(session, actor, "content.edit", "content", content.id,
                 {"version": content.version, "fields": sorted(diff), "from": before, "to": content.status,
                  **({"note": note} if note else {})},
                 areas=_areas(content, diff))
    return diff


def _areas(content: Content, diff: Mapping[str, list[Any]] | None = None) -> list[str] | None:
    codes = {content.area_code} | ({diff["area_code"][0]} if diff and "area_code" in diff else set())
    codes.discard(None)
    return sorted(codes) or None  # type: ignore[arg-type]


def transition(session: Session, actor: Actor, content: Content, action: str, reason: str | None = None) -> Content:
    """Take workflow `action` (submit, approve, reject, publish, approve_and_publish, archive);
    WorkflowError naming the rule if it is not allowed. Audited as content.<action>."""
    t = check(session, actor, content, action, reason)
    before = status_of(content)
    now = utcnow()
    reason = (reason or "").strip() or None
    content.status = t.target
    if action in ("approve", "reject", "approve_and_publish"):
        content.reviewed_by, content.reviewed_at = actor.name, now
    if t.target == S.PUBLISHED:
        content.published_by, content.published_at = actor.name, now
    if action in ("reject", "archive"):
        content.reason = reason
    elif action == "submit":
        content.reason = None  # the last rejection was answered by this version
    audit.record(session, actor, f"content.{action}", "content", content.id,
                 {"from": before, "to": t.target, "version": content.version or 1,
                  **({"reason": reason} if reason else {})},
                 areas=_areas(content))
    return content


def versions(session: Session, content: Content) -> list[ContentVersion]:
    """Every version of `content`, oldest first."""
    return list(session.scalars(select(ContentVersion).where(ContentVersion.content_id == content.id)
                                .order_by(ContentVersion.version)))


# -- who reads what ---------------------------------------------------------------------------------
def _published() -> ColumnElement[bool]:
    return or_(Content.status.is_(None), Content.status == S.PUBLISHED)


def readable(session: Session, actor: Actor) -> ColumnElement[bool] | None:
    """SQL condition on Content: the contents `actor` may read (None: all); see the module docstring."""
    paths = actor.area_paths(session)
    if paths is None:
        return None
    if not paths:
        return and_(Content.area_code.is_(None), _published())
    above = {code for p in paths for code in p.strip("/").split("/") if code}
    own = Content.area_code.in_(select(Area.code).where(under_any(Area.path, paths)))
    return or_(own, and_(or_(Content.area_code.is_(None), Content.area_code.in_(sorted(above))), _published()))


def can_read(session: Session, actor: Actor, content: Content) -> bool:
    cond = readable(session, actor)
    if cond is None:
        return True
    return session.scalar(select(Content.id).where(Content.id == content.id, cond)) is not None
