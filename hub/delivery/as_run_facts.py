"""What the as-run recorder (hub.delivery.as_run) writes beside a segment so that statistics keep
their numbers after the device or the content is deleted: the device's area, and the content's
title, category and origin.

The origin rule (national / provincial / local), one place for the recorder and the reports:
1. a content that came from a source run by the `national` plugin (the national-system
   connector; the source's plugin as its last poll recorded it in source_status, the sources
   file's `plugin:`) is **national**;
2. otherwise its area decides: none, or the top of the tree (the province) → **provincial**;
   any area below it (district, commune, village) → **local**.
A play with no content (a relay of a bare stream URL) has no origin (None: "unknown").
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.store.models import Area, Content, SourceStatus

NATIONAL, PROVINCIAL, LOCAL = "national", "provincial", "local"
ORIGINS = (NATIONAL, PROVINCIAL, LOCAL)
NATIONAL_PLUGINS = frozenset({"national"})  # source plugins whose items come from the national system


@dataclass(frozen=True)
class ContentFacts:
    title: str | None
    category: str | None
    origin: str | None


NO_CONTENT = ContentFacts(None, None, None)


def origin_of(session: Session, content: Content) -> str:
    """The content's origin by the module's rule."""
    if content.source:
        plugin = session.scalar(select(SourceStatus.plugin).where(SourceStatus.name == content.source))
        if plugin in NATIONAL_PLUGINS:
            return NATIONAL
    if content.area_code is None:
        return PROVINCIAL
    parent = session.scalar(select(Area.parent_code).where(Area.code == content.area_code))
    return PROVINCIAL if parent is None else LOCAL


def content_facts(session: Session, content: Content | None) -> ContentFacts:
    if content is None:
        return NO_CONTENT
    return ContentFacts(content.title, content.category, origin_of(session, content))
