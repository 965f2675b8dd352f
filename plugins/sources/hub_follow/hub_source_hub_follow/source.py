"""Follow another hub: read its feed of published contents (GET /api/feed/contents) with an API
token of an account there, page by page from the last cursor, and hand each content to the hub
as a SourceItem whose external_id is "<origin hub_name>:<content id>".

The origin is the hub where the content was written, not necessarily the one serving the feed: a
bulletin of the national hub that a province passes on keeps the national id, so a hub following
both takes it in once. The follower says its own hub_name (`exclude_origin`), and the serving
hub leaves out what started here; an item that still names this hub as origin (an older hub
serving) is dropped here too, so nothing goes round in a loop.
"""
from __future__ import annotations

import json
import logging
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from hub.capabilities import PRIORITIES
from hub.config import HUB_NAME
from hub.source import MediaRef, Source, SourceCheck, SourceError, SourceItem, SourceManifest

log = logging.getLogger(__name__)
SINCE_OVERLAP = timedelta(minutes=10)  # more than the feed's hold-back and two hubs' clock drift

FEED_PATH = "/api/feed/contents"
MAX_PAGE = 500  # the feed's own limit


class ConfigSchema(Schema):
    class Meta:
        unknown = RAISE

    base_url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                          metadata={"description": "The followed hub's API root (https://hub.tinh-80.vn)"})
    token = fields.Str(required=True, validate=validate.Length(min=1),
                       metadata={"description": "An API token of an account on the followed hub; "
                                                "write ${ENV_NAME} in the sources file, never the token"})
    areas = fields.List(fields.Str(validate=validate.Length(min=1, max=50)), load_default=list,
                        metadata={"description": "Only contents of these areas (of the followed hub) and "
                                                 "those with no area; default: all the token may see"})
    hub_name = fields.Str(load_default=None, validate=validate.Regexp(HUB_NAME.pattern + "$"),
                          metadata={"description": "This hub's own hub_name; default: the hub_name setting"})
    timeout_s = fields.Float(load_default=10.0, validate=validate.Range(min=0.1, max=300))
    page_size = fields.Int(load_default=100, validate=validate.Range(min=1, max=MAX_PAGE))
    max_pages = fields.Int(load_default=50, validate=validate.Range(min=1, max=10_000),
                           metadata={"description": "Pages read in one fetch; the next fetch goes on from there"})


class HubFollow(Source):
    manifest = SourceManifest(name="hub_follow", title="Another hub's published contents (federation)",
                              version="0.1.0", config_schema=ConfigSchema, formats=("hub-feed-1",),
                              min_interval_s=30)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._cursor: str | None = None  # where the last fetch stopped; lost on restart (then `since` serves)
        self.origin: str | None = None  # the followed hub's hub_name, from its answers

    # -- configuration ----------------------------------------------------------------------------
    @property
    def _base(self) -> str:
        return str(self.config["base_url"]).rstrip("/")

    def _own_name(self) -> str:
        name = self.config.get("hub_name")
        if name:
            return str(name)
        from hub.config import get_settings

        return get_settings().hub_name

    # -- HTTP -------------------------------------------------------------------------------------
    def _get(self, params: dict[str, Any]) -> dict[str, Any]:
        url = f"{self._base}{FEED_PATH}?{urllib.parse.urlencode(params, doseq=True)}"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.config['token']}",
                                                   "Accept": "application/json"})
        where = f"hub feed {self._base}"
        try:
            with urllib.request.urlopen(req, timeout=float(self.config.get("timeout_s", 10.0))) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            raise _http_error(where, exc) from None
        except (TimeoutError, socket.timeout):
            raise SourceError(f"{where}: no answer within {self.config.get('timeout_s', 10.0)} s",
                              transient=True) from None
        except urllib.error.URLError as exc:
            raise SourceError(f"{where}: cannot connect ({exc.reason})", transient=True) from None
        except OSError as exc:  # a reset connection
            raise SourceError(f"{where}: {exc}", transient=True) from None
        try:
            page = json.loads(body)
        except ValueError:
            raise SourceError(f"{where}: the answer is not JSON; is base_url the hub's address?") from None
        if not isinstance(page, dict) or not isinstance(page.get("items"), list) or not page.get("hub"):
            raise SourceError(f"{where}: the answer is not a hub feed page (hub, items, next)")
        return page

    def _params(self, start: dict[str, str], limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, "exclude_origin": self._own_name(), **start}
        if self.config.get("areas"):
            params["area"] = list(self.config["areas"])
        return params

    # -- the contract -----------------------------------------------------------------------------
    def test(self) -> SourceCheck:
        """Reads the first page: proves the address, the token and its rights at once."""
        try:
            page = self._get(self._params({}, 3))
            items = [i for i in (self._item(row, page["hub"]) for row in page["items"]) if i is not None]
        except SourceError as exc:
            return SourceCheck(False, str(exc))
        self.origin = str(page["hub"])
        more = "more" if page.get("more") else "no more"
        return SourceCheck(True, f"hub {self.origin} at {self._base}: feed readable with this token, "
                                 f"{len(page['items'])} items on the first page ({more} after them)",
                           tuple(items))

    def fetch(self, since: datetime | None) -> Sequence[SourceItem]:
        """The contents published after the last cursor (after `since` when this instance has none
        yet, e.g. after a restart: items near that instant may come again, under the same id)."""
        cursor = self._cursor
        # `since` is this hub's clock and the followed hub holds back its newest seconds, so a
        # content published just before the last poll would fall between the two: read an
        # overlap again (what comes twice keeps its external_id, and the hub keeps one record).
        start = {"after": cursor} if cursor else (
            {"since": (since - SINCE_OVERLAP).isoformat()} if since is not None else {})
        found: dict[str, SourceItem] = {}
        for _ in range(int(self.config.get("max_pages", 50))):
            page = self._get(self._params(start, int(self.config.get("page_size", 100))))
            self.origin = str(page["hub"])
            for row in page["items"]:
                item = self._item(row, self.origin)
                if item is not None:
                    found[item.external_id] = item  # the later version of a content wins
            cursor = page.get("next") or cursor
            if not page.get("more") or not cursor:
                break
            start = {"after": cursor}
        self._cursor = cursor  # only once every page was read: a failed fetch is read again, not skipped
        return list(found.values())

    # -- one feed item ----------------------------------------------------------------------------
    def _item(self, row: Any, serving: str) -> SourceItem | None:
        """The SourceItem of one feed item; None for one that must not be taken in (it started
        here, it has expired) or is malformed (logged: one bad item must not stop the feed)."""
        try:
            origin = row.get("origin") or {"hub": serving, "id": row["id"]}
            if origin["hub"] == self._own_name():
                return None
            expires = _instant(row.get("valid_until"))
            if expires is not None and expires <= datetime.now(timezone.utc):
                return None
            media = row.get("media") or {}
            attachments = (MediaRef(media["uri"], media.get("mime")),) if media.get("uri") else ()
            priority = row.get("priority")
            return SourceItem(
                external_id=f"{origin['hub']}:{origin['id']}", title=row["title"], text=row.get("body") or "",
                language=row.get("language"), published_at=_instant(row.get("published_at")),
                url=f"{self._base}/api/contents/{urllib.parse.quote(str(row['id']))}",
                attachments=attachments, severity=priority if priority in PRIORITIES else None,
                category=row.get("category"), expires_at=expires,
                area_codes=(row["area_code"],) if row.get("area_code") else (),
                raw={**row, "via": serving})
        except (KeyError, TypeError, ValueError, AttributeError, SourceError) as exc:
            log.warning("hub feed %s: item %r skipped: %s", self._base,
                        row.get("id") if isinstance(row, dict) else row, exc)
            return None


def _instant(text: Any) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(str(text))
    if value.utcoffset() is None:
        raise ValueError(f"{text!r} has no time zone")
    return value


def _http_error(where: str, exc: urllib.error.HTTPError) -> SourceError:
    try:
        message = json.loads(exc.read()).get("message") or exc.reason
    except (ValueError, AttributeError, OSError):
        message = exc.reason
    if exc.code == 401:
        return SourceError(f"{where}: the token was refused (401: {message}); check the token in the sources "
                           f"file: it may be mistyped, revoked or its account disabled")
    if exc.code == 403:
        return SourceError(f"{where}: the token may not read the feed (403: {message}); give its account a "
                           f"role there, or areas that cover the configured ones")
    if exc.code == 404:
        return SourceError(f"{where}: no feed there (404); is base_url the hub's address, and the hub recent "
                           f"enough to serve {FEED_PATH}?")
    if exc.code >= 500 or exc.code == 429:
        return SourceError(f"{where}: HTTP {exc.code} ({message})", transient=True)
    return SourceError(f"{where}: HTTP {exc.code}: {message}")
