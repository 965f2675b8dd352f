"""What the hub does with the items a source returns: each becomes (or updates) a content.

One record per (source, external_id): an item seen again unchanged does nothing, changed it
makes a new version. `replaces` archives the earlier items it names and takes their place;
`withdraws` archives them, cancels what was going to play them and never creates a content nor
a broadcast. Items are drafts for an editor unless the source is configured to publish (and,
for an emergency, to dispatch) at once; an exercise item, or one whose areas lie outside the
province, is never published by a source. Every change is audited as `source:NAME`.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.access import audit
from hub.access.actors import Actor
from hub.capabilities import DEFAULT_PRIORITY
from hub.content import publishing
from hub.content.source_config import SourceConfig
from hub.runtime import Runtime
from hub.source import SourceItem
from hub.store.content_tables import ContentStatus, ContentVersion
from hub.store.db import utcnow
from hub.store.models import Area, Command, Content, Delivery, DeliveryState

log = logging.getLogger(__name__)

TRACKED = ("title", "body", "language", "category", "priority", "valid_until", "area_code", "geography")


def source_actor(name: str) -> Actor:
    """Who a source acts as: unrestricted (the file that configures it is the administrator's
    word), named so that the audit log and content versions say which source did it."""
    return Actor(name=f"source:{name}", via="source")


@dataclass
class IntakeResult:
    created: list[str] = field(default_factory=list)  # content ids
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    archived: list[str] = field(default_factory=list)  # replaced or withdrawn
    unplaced: list[str] = field(default_factory=list)  # external ids whose areas match nothing here
    published: list[str] = field(default_factory=list)
    dispatched: list[str] = field(default_factory=list)  # command ids
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"created": len(self.created), "updated": len(self.updated), "unchanged": self.unchanged,
                "archived": len(self.archived), "unplaced": len(self.unplaced),
                "published": len(self.published), "dispatched": len(self.dispatched), "errors": self.errors}


def target_for(content: Content) -> dict[str, Any]:
    """Where a content dispatched by its source goes. The one place that decides it: the devices
    inside its polygons and circles when the source drew any (a CAP alert's shapes are more
    precise than the administrative units it also names), else its areas."""
    geo = content.geography or {}
    if geo.get("polygons") or geo.get("circles"):
        return {"geometry": {"polygons": geo.get("polygons") or [], "circles": geo.get("circles") or []}}
    areas = list(geo.get("matched_areas") or ([content.area_code] if content.area_code else []))
    return {"areas": areas}


def _place(session: Session, cfg: SourceConfig, item: SourceItem) -> tuple[str | None, dict[str, Any], bool]:
    """(area_code, geography, unplaced). The most specific area the item names that exists here;
    none named and no shape: the source's default area; named but none here: the default area,
    flagged unplaced so that nothing publishes it."""
    known = {a.code: a for a in session.scalars(select(Area).where(Area.code.in_(item.area_codes)))} \
        if item.area_codes else {}
    matched = [c for c in item.area_codes if c in known]
    default = cfg.area_code if cfg.area_code and session.get(Area, cfg.area_code) is not None else None
    geography = {"area_codes": list(item.area_codes), "matched_areas": matched,
                 "unresolved_areas": list(item.unresolved_areas),
                 "polygons": [[list(p) for p in ring] for ring in item.polygons],
                 "circles": [list(c) for c in item.circles]}
    if matched:
        best = max(matched, key=lambda c: (known[c].level, -matched.index(c)))
        return best, geography, False
    # named areas none of which is here, or places the plugin could not read and no shape: kept
    # and reported, never widened to the default area
    unplaced = bool(item.area_codes) or bool(item.unresolved_areas and not (item.polygons or item.circles)) \
        or default is None
    return default, geography, unplaced


def _fields(session: Session, cfg: SourceConfig, item: SourceItem) -> tuple[dict[str, Any], bool]:
    area_code, geography, unplaced = _place(session, cfg, item)
    origin: dict[str, Any] = {"source": cfg.name, "url": item.url,
                              "published_at": item.published_at.isoformat() if item.published_at else None}
    if item.exercise:
        origin["exercise"] = True
    if unplaced:
        origin["unplaced"] = True
    return {"title": (item.title or item.text[:80] or item.external_id)[:300], "body": item.text or item.title,
            "language": item.language or "vi", "category": (item.category or cfg.category or None),
            "priority": item.severity or DEFAULT_PRIORITY, "valid_until": item.expires_at,
            "area_code": area_code, "geography": geography, "origin": origin}, unplaced


def _jsonable(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def _expired(item: SourceItem) -> bool:
    return item.expires_at is not None and item.expires_at <= utcnow()


def _publishable(cfg: SourceConfig, item: SourceItem, priority: str, unplaced: bool) -> bool:
    if unplaced or _expired(item) or (item.exercise and not cfg.allow_exercise):
        return False
    if priority == "emergency":
        return cfg.emergency == "dispatch"  # else an emergency waits for a person, whatever auto_publish says
    return cfg.auto_publish


def _archive(session: Session, cfg: SourceConfig, refs: tuple[str, ...], reason: str, action: str,
             result: IntakeResult) -> list[str]:
    actor = source_actor(cfg.name)
    ids = []
    for old in session.scalars(select(Content).where(Content.source == cfg.name, Content.external_id.in_(refs))):
        if old.status == ContentStatus.ARCHIVED:
            continue
        old.status, old.reason, old.updated_at, old.updated_by = ContentStatus.ARCHIVED, reason, utcnow(), actor.name
        audit.record(session, actor, action, "content", old.id, {"external_id": old.external_id, "reason": reason},
                     areas=[old.area_code] if old.area_code else ())
        ids.append(old.id)
        result.archived.append(old.id)
    return ids


def _take_one(session: Session, cfg: SourceConfig, item: SourceItem, result: IntakeResult) -> tuple[
        Content | None, list[str]]:
    """Apply one item; (the content to dispatch, if any; ids of contents whose commands to stop)."""
    actor, now = source_actor(cfg.name), utcnow()
    if item.withdraws:
        reason = f"withdrawn by source {cfg.name} (item {item.external_id})"
        stopped = _archive(session, cfg, item.withdraws, reason, "content.withdraw", result)
        if not stopped:
            log.info("source %s: item %s withdraws %s, not (or no longer) here", cfg.name, item.external_id,
                     ", ".join(item.withdraws))
        return None, stopped
    values, unplaced = _fields(session, cfg, item)
    if unplaced:
        result.unplaced.append(item.external_id)
        why = (f"names areas {', '.join(item.area_codes)}, none of them here" if item.area_codes else
               f"names places it could not read ({'; '.join(item.unresolved_areas)[:200]})"
               if item.unresolved_areas else
               f"names no area, and the source's area_code {cfg.area_code!r} is not an area here")
        log.warning("source %s: item %s %s; kept as a draft in %s, flagged", cfg.name, item.external_id, why,
                    values["area_code"] or "no area")
    stopped = _archive(session, cfg, item.replaces, f"replaced by {item.external_id} from source {cfg.name}",
                       "content.replace", result) if item.replaces else []
    existing = session.scalars(select(Content).where(Content.source == cfg.name,
                                                     Content.external_id == item.external_id)).first()
    publish = _publishable(cfg, item, values["priority"], unplaced)
    areas = [values["area_code"]] if values["area_code"] else ()
    if existing is None:
        content = Content(id=uuid.uuid4().hex, kind="tts_text", created_by=actor.name, created_at=now,
                          status=ContentStatus.DRAFT, version=1, source=cfg.name, external_id=item.external_id,
                          **values)
        session.add(content)
        session.flush()
        session.add(ContentVersion(content_id=content.id, version=1, changed_by=actor.name, changed_at=now,
                                   changes={}, note=f"taken in from source {cfg.name}"))
        audit.record(session, actor, "content.create", "content", content.id,
                     {"kind": "tts_text", "title": content.title, "source": cfg.name,
                      "external_id": item.external_id, "exercise": item.exercise, "unplaced": unplaced,
                      **({"replaces": stopped} if stopped else {})}, areas=areas)
        result.created.append(content.id)
    else:
        content = existing
        changes = {k: [_jsonable(getattr(content, k)), _jsonable(v)] for k, v in values.items()
                   if k in TRACKED and getattr(content, k) != v}
        if not changes:
            result.unchanged += 1
            return None, stopped
        for k in changes:
            setattr(content, k, values[k])
        content.origin = values["origin"]
        content.version = (content.version or 1) + 1
        content.updated_at, content.updated_by = now, actor.name
        session.add(ContentVersion(content_id=content.id, version=content.version, changed_by=actor.name,
                                   changed_at=now, changes=changes, note=f"changed at source {cfg.name}"))
        if content.status in (ContentStatus.SUBMITTED, ContentStatus.APPROVED, ContentStatus.REJECTED) or (
                content.status == ContentStatus.PUBLISHED and not publish):
            content.status = ContentStatus.DRAFT  # changed text needs a person's approval again
        audit.record(session, actor, "content.update", "content", content.id,
                     {"version": content.version, "changed": sorted(changes), "status": content.status},
                     areas=areas)
        result.updated.append(content.id)
    if publish and content.status == ContentStatus.DRAFT:
        content.status, content.published_by, content.published_at = ContentStatus.PUBLISHED, actor.name, now
        audit.record(session, actor, "content.publish", "content", content.id,
                     {"source": cfg.name, "auto_publish": cfg.auto_publish, "priority": content.priority},
                     areas=areas)
        result.published.append(content.id)
        if existing is None and cfg.dispatches(content.priority):
            return content, stopped
    return None, stopped


def stop_commands(rt: Runtime, cfg: SourceConfig, content_ids: list[str]) -> int:
    """End what was going to play withdrawn or replaced contents: scheduled commands are cancelled
    (hub.delivery.dispatch.cancel), rows still queued and unclaimed end superseded. A row a worker
    holds may already be on the device: it is left alone, as any supersede leaves it."""
    from hub.delivery.dispatch import DispatchError, cancel

    if not content_ids:
        return 0
    actor, now, stopped = source_actor(cfg.name), utcnow(), 0
    with rt.db.session() as s:
        commands = list(s.scalars(select(Command).where(Command.content_id.in_(content_ids),
                                                        Command.cancelled_at.is_(None))))
        later = [c.id for c in commands if c.start_at is not None and c.start_at > now]
        for c in commands:
            if c.id in later:
                continue
            n = s.execute(update(Delivery).where(Delivery.command_id == c.id, Delivery.claimed_at.is_(None),
                                                 Delivery.state.in_((DeliveryState.QUEUED, DeliveryState.SCHEDULED)))
                          .values(state=DeliveryState.SUPERSEDED, finished_at=now,
                                  reason=f"content withdrawn by source {cfg.name}")
                          .execution_options(synchronize_session=False)).rowcount
            if n:
                audit.record(s, actor, "command.withdraw", "command", c.id, {"deliveries": n})
                stopped += 1
    for cid in later:
        try:
            cancel(rt, actor, cid)
            stopped += 1
        except DispatchError as exc:  # started meanwhile, or cancelled by a person: nothing left to stop
            log.info("source %s: command %s not cancelled: %s", cfg.name, cid, exc)
    return stopped


def dispatch_now(rt: Runtime, cfg: SourceConfig, content: Content) -> str:
    """Play an emergency content at once on its areas, as source:NAME; the command id."""
    from hub.delivery.dispatch import submit
    from hub.schemas import CommandSchema

    data = CommandSchema().load({"verb": "play", "target": target_for(content), "content_id": content.id,
                                 "priority": content.priority})
    done = submit(rt, source_actor(cfg.name), data)
    return done.command.id


def take_in(rt: Runtime, cfg: SourceConfig, items: list[SourceItem]) -> IntakeResult:
    """Apply every item in order, each in its own transaction: one bad item costs only itself."""
    result = IntakeResult()
    for item in items:
        try:
            seen = len(result.created), len(result.updated)
            with rt.db.session() as s:
                to_dispatch, stopped = _take_one(s, cfg, item, result)
            stop_commands(rt, cfg, stopped)
            # a published text is spoken now, before any command can need its audio (and again
            # when its source changed the text: the audio is keyed by the text)
            publishing.speak(rt, result.created[seen[0]:] + result.updated[seen[1]:])
            if to_dispatch is not None:
                result.dispatched.append(dispatch_now(rt, cfg, to_dispatch))
        except Exception as exc:  # recorded on the source's health; the next items still come in
            log.exception("source %s: item %s could not be taken in", cfg.name, item.external_id)
            result.errors.append(f"item {item.external_id}: {type(exc).__name__}: {exc}"[:300])
    return result
