"""The feed of published contents: what another hub follows (the province follows the national
hub, a neighbouring province takes a storm bulletin) with an API token of an account here.

Only published contents are served (a row older than the workflow, with no status, counts as
published); drafts, submitted, approved, rejected and archived ones never are. The order is
(published_at, or created_at for old rows; then id), and `next` is an opaque cursor to pass back
as `after`. Areas: a caller sees the contents whose area lies within its areas (the account's,
narrowed by the token's) and the contents with no area, which are meant for everyone; a bulletin
for a whole province is not shown to a token of one of its communes — give that follower the
province, or publish the bulletin without an area.

Loops: each item says its `origin` — the hub where it was written and its id there. A content
this hub took in from another hub's feed keeps that hub as its origin (recognised by the external
id "<hub_name>:<content id>" the hub_follow source gives it), so ids stay the same however many
hubs it passes through. A follower passes its own hub_name as `exclude_origin` and gets nothing
that started at its own hub: no hub re-publishes to its source what it got from it.
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import and_, func, or_, select

from hub.access.permissions import ANYONE
from hub.api.common import HubBlueprint, QueryArgs, fail, in_scope, path_allowed, runtime, scope
from hub.config import HUB_NAME
from hub.hookspecs import hookimpl
from hub.store.content_tables import ContentStatus
from hub.store.db import utcnow
from hub.store.models import Area, Content

blp = HubBlueprint("feed", __name__, url_prefix="/api/feed",
                   description="Published contents in a stable order, for other hubs that follow this one "
                               "(the hub_follow source).")

# Who may call each view (hook register_blueprints; hub.access.permissions refuses the rest).
RULES = {"FeedContents": {"GET": ANYONE}}

DEFAULT_LIMIT, MAX_LIMIT = 100, 500
# A content's feed time is taken when it is published, but its transaction commits a moment
# later: a follower that read past that time meanwhile would skip it for ever. So the feed serves
# only what was published at least this long ago (the clocks of the hub's API hosts must agree
# to better than this).
SETTLE_S = 2.0
CURSOR_PREFIX = "c1."
# The external id the hub_follow source gives what it takes in: "<origin hub_name>:<content id>".
FEDERATED_ID = re.compile(rf"({HUB_NAME.pattern}):([0-9a-f]{{32}})")


class FeedQuery(QueryArgs):
    after = ma.fields.Str(validate=ma.validate.Length(min=1, max=300),
                          metadata={"description": "The `next` cursor of the previous answer"})
    since = ma.fields.AwareDateTime(metadata={"description": "Without a cursor: what was published after this "
                                                             "instant (a follower recovering after a restart)"})
    limit = ma.fields.Int(load_default=DEFAULT_LIMIT, validate=ma.validate.Range(min=1, max=MAX_LIMIT))
    area = ma.fields.List(ma.fields.Str(validate=ma.validate.Length(min=1, max=50)),
                          metadata={"description": "Only these areas (and contents with no area); each must lie "
                                                   "within the caller's areas"})
    exclude_origin = ma.fields.Str(validate=ma.validate.Regexp(HUB_NAME.pattern + "$"),
                                   metadata={"description": "The asking hub's hub_name: contents that started "
                                                            "there are left out"})

    @ma.validates_schema
    def _one_start(self, data: dict[str, Any], **_: Any) -> None:
        if "after" in data and "since" in data:
            raise ma.ValidationError("give either a cursor (after) or an instant (since), not both", "since")


class MediaOut(ma.Schema):
    uri = ma.fields.Str(metadata={"description": "Where the media is fetched from, as stored on this hub"})
    sha256 = ma.fields.Str()
    duration_s = ma.fields.Float()
    mime = ma.fields.Str()


class OriginOut(ma.Schema):
    hub = ma.fields.Str(metadata={"description": "hub_name of the hub where the content was written"})
    id = ma.fields.Str(metadata={"description": "Its id there"})


class FeedItem(ma.Schema):
    id = ma.fields.Str()
    title = ma.fields.Str()
    kind = ma.fields.Str()
    language = ma.fields.Str()
    body = ma.fields.Str(allow_none=True)
    priority = ma.fields.Str()
    category = ma.fields.Str(allow_none=True)
    area_code = ma.fields.Str(allow_none=True)
    valid_from = ma.fields.AwareDateTime(allow_none=True)
    valid_until = ma.fields.AwareDateTime(allow_none=True)
    published_at = ma.fields.AwareDateTime(metadata={"description": "Its feed time (created_at for old rows)"})
    updated_at = ma.fields.AwareDateTime(allow_none=True)
    version = ma.fields.Int(allow_none=True)
    media = ma.fields.Nested(MediaOut, allow_none=True,
                             metadata={"description": "The stored media reference; a signed, expiring URL "
                                                      "from the media store will replace uri when it exists"})
    origin = ma.fields.Nested(OriginOut)
    cursor = ma.fields.Str(metadata={"description": "Pass as `after` to continue after this item"})


class FeedPage(ma.Schema):
    hub = ma.fields.Str(metadata={"description": "hub_name of the hub serving the feed"})
    items = ma.fields.List(ma.fields.Nested(FeedItem))
    next = ma.fields.Str(allow_none=True, metadata={"description": "Cursor to pass as `after` next time "
                                                                  "(the one given when nothing is new)"})
    more = ma.fields.Bool(metadata={"description": "Whether another page follows at once"})


def encode_cursor(at: datetime, content_id: str) -> str:
    stamp = at.astimezone(timezone.utc).isoformat(timespec="microseconds")
    return CURSOR_PREFIX + base64.urlsafe_b64encode(f"{stamp}|{content_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(feed time, id) of a cursor; ValueError when it is not one this feed gave."""
    if not cursor.startswith(CURSOR_PREFIX):
        raise ValueError
    raw = cursor[len(CURSOR_PREFIX):]
    try:
        stamp, _, content_id = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode().partition("|")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError from None
    at = datetime.fromisoformat(stamp)
    if at.utcoffset() is None or not content_id:
        raise ValueError
    return _utc(at), content_id


def _utc(at: datetime) -> datetime:
    """`at` in UTC, as the database compares it; ValueError when that leaves the calendar (year 1 at +14:00)."""
    try:
        return at.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"{at.isoformat()} is out of range") from None


def origin_of(content: Content, hub_name: str) -> dict[str, str]:
    """Where a content was written: the hub it was followed from, or this one."""
    if content.source is not None and content.external_id:
        m = FEDERATED_ID.fullmatch(content.external_id)
        if m:
            return {"hub": m.group(1), "id": m.group(2)}
    return {"hub": hub_name, "id": content.id}


def _area_condition(session: Any, codes: list[str] | None) -> Any:
    """Contents with no area, or whose area lies in the caller's areas (and in `codes` when given)."""
    paths = scope(session)
    conds = []
    cond = in_scope(Area.path, paths)
    if cond is not None:
        conds.append(cond)
    if codes:
        wanted = dict(session.execute(select(Area.code, Area.path).where(Area.code.in_(codes))).all())
        for code in codes:
            if code not in wanted:
                fail(422, f"unknown area {code} on this hub", field="area", location="query")
            if not path_allowed(wanted[code], paths):
                fail(403, f"area {code} lies outside the areas of this caller", field="area", location="query")
        conds.append(in_scope(Area.path, wanted.values()))
    if not conds:
        return None
    return or_(Content.area_code.is_(None), and_(*conds))


@blp.route("/contents")
class FeedContents(MethodView):
    @blp.arguments(FeedQuery, location="query", as_kwargs=True)
    @blp.response(200, FeedPage)
    @blp.fails(401, 403, 422)
    def get(self, limit: int, after: str | None = None, since: datetime | None = None,
            area: list[str] | None = None, exclude_origin: str | None = None) -> dict[str, Any]:
        """Follow published contents

        Nguồn tin đã xuất bản, cho hub khác theo dõi: published contents after a cursor, oldest first.
        """
        hub_name = runtime().settings.hub_name
        if exclude_origin == hub_name:
            fail(422, f"this hub is also named {hub_name}: give each hub its own hub_name", field="exclude_origin",
                 location="query")
        feed_time = func.coalesce(Content.published_at, Content.created_at)
        stmt = (select(Content, feed_time).outerjoin(Area, Area.code == Content.area_code)
                .where(or_(Content.status == ContentStatus.PUBLISHED.value, Content.status.is_(None)))
                .where(feed_time <= utcnow() - timedelta(seconds=SETTLE_S))
                .order_by(feed_time, Content.id).limit(limit + 1))
        if after is not None:
            try:
                at, last_id = decode_cursor(after)
            except ValueError:
                fail(422, "not a cursor of this feed: pass back the `next` of an earlier answer", field="after",
                     location="query")
            stmt = stmt.where(or_(feed_time > at, and_(feed_time == at, Content.id > last_id)))
        elif since is not None:
            try:
                stmt = stmt.where(feed_time > _utc(since))
            except ValueError as exc:
                fail(422, str(exc), field="since", location="query")
        if exclude_origin is not None:  # what this hub took in from the asker's feed
            stmt = stmt.where(or_(Content.source.is_(None), Content.external_id.is_(None),
                                  ~Content.external_id.startswith(f"{exclude_origin}:", autoescape=True)))
        with runtime().db.session() as s:
            cond = _area_condition(s, area)
            if cond is not None:
                stmt = stmt.where(cond)
            rows = s.execute(stmt).all()
            items = [_item(c, at, hub_name) for c, at in rows[:limit]]
        return {"hub": hub_name, "items": items, "next": items[-1]["cursor"] if items else after,
                "more": len(rows) > limit}


def _item(c: Content, at: datetime, hub_name: str) -> dict[str, Any]:
    media = None
    if c.media:
        media = {k: c.media[k] for k in ("uri", "sha256", "duration_s", "mime") if c.media.get(k) is not None}
    return {"id": c.id, "title": c.title, "kind": c.kind, "language": c.language, "body": c.body,
            "priority": c.priority, "category": c.category, "area_code": c.area_code, "valid_from": c.valid_from,
            "valid_until": c.valid_until, "published_at": at, "updated_at": c.updated_at, "version": c.version,
            "media": media, "origin": origin_of(c, hub_name), "cursor": encode_cursor(at, c.id)}


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
