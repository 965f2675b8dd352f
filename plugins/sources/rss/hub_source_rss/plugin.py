"""The `rss` source: an RSS 2.0, RSS 1.0 or Atom feed at a URL, read on the hub's schedule.

Each fetch asks the server "changed since?" (ETag / Last-Modified) and gets 304 and no items when
the feed is as it was. `since` is not used to drop items: a feed is a short window of recent
entries, and an entry often appears in it minutes after the date it carries (caches, editors
back-dating), so filtering by date would lose it; the hub already keeps one record per id.
"""
from __future__ import annotations

import io
import logging
import xml.sax
from datetime import datetime
from typing import Any

import feedparser
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from hub.hookspecs import hookimpl
from hub.source import Source, SourceCheck, SourceError, SourceItem, SourceManifest

from hub_source_rss import __version__
from hub_source_rss.fetching import FetchError, Response, Validators, check_url, get
from hub_source_rss.items import to_item
from hub_source_rss.plaintext import language_tag, one_line

log = logging.getLogger(__name__)


class ConfigSchema(Schema):
    class Meta:
        unknown = RAISE

    url = fields.Str(required=True)
    timeout_s = fields.Float(load_default=15.0, validate=validate.Range(min=0.1, max=300))
    headers = fields.Dict(keys=fields.Str(), values=fields.Str(), load_default=dict)  # User-Agent, Authorization…
    conditional_get = fields.Bool(load_default=True)  # send If-None-Match / If-Modified-Since
    max_items = fields.Int(load_default=50, validate=validate.Range(min=1, max=1000))
    max_bytes = fields.Int(load_default=5_000_000, validate=validate.Range(min=1024, max=100_000_000))
    language = fields.Str(load_default=None, allow_none=True)  # when the feed does not say
    accept_malformed = fields.Bool(load_default=False)  # take what the lenient parser recovers

    @validates("url")
    def _http_only(self, value: str, **_: Any) -> None:
        try:
            check_url(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


def _not_a_feed(url: str, parsed: Any) -> str | None:
    """Why the parsed document is refused, or None."""
    exc = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if not parsed.get("version"):
        because = f": {type(exc).__name__}: {exc}" if exc is not None else ""
        return f"{url} is not an RSS or Atom feed (no rss, rdf or feed root element){because}"
    if isinstance(exc, xml.sax.SAXParseException):
        return (f"{url} is not well-formed XML: line {exc.getLineNumber()}, column {exc.getColumnNumber()}: "
                f"{exc.getMessage()} (set accept_malformed to read it leniently)")
    return None


class RssSource(Source):
    manifest = SourceManifest(name="rss", title="RSS and Atom feeds", version=__version__,
                              config_schema=ConfigSchema, formats=("rss-2.0", "rss-1.0", "atom-1.0"),
                              min_interval_s=60)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        # Kept as long as this instance lives; a fresh instance makes one unconditional request.
        self.validators: Validators | None = None

    def _setting(self, key: str) -> Any:
        # a config built without configured() (tests, the hub's own callers) gets the schema's defaults
        if key in self.config:
            return self.config[key]
        default = ConfigSchema().fields[key].load_default
        return default() if callable(default) else default

    def _download(self, conditional: bool) -> Response:
        try:
            return get(self.config["url"], timeout_s=float(self._setting("timeout_s")),
                       headers=self._setting("headers") or {}, max_bytes=int(self._setting("max_bytes")),
                       validators=self.validators if conditional else None)
        except FetchError as exc:
            raise SourceError(str(exc), transient=exc.transient) from None
        except ValueError as exc:  # a URL the schema would have refused
            raise SourceError(str(exc)) from None

    def _parse(self, resp: Response) -> tuple[Any, list[SourceItem], list[str]]:
        parsed = feedparser.parse(io.BytesIO(resp.body), response_headers={
            "content-type": resp.headers.get("content-type", "application/xml"), "content-location": resp.url})
        problem = _not_a_feed(self.config["url"], parsed)
        if problem and not (parsed.get("version") and self._setting("accept_malformed")):
            raise SourceError(problem)
        language = language_tag(parsed.feed.get("language")) or language_tag(self._setting("language"))
        items: list[SourceItem] = []
        refused: list[str] = []
        seen: set[str] = set()
        for entry in parsed.entries[: int(self._setting("max_items"))]:
            try:
                item = to_item(entry, language)
            except SourceError as exc:  # one broken entry must not hide the others
                refused.append(str(exc))
                continue
            if item.external_id not in seen:  # some feeds repeat an entry; the first is the newest
                seen.add(item.external_id)
                items.append(item)
        for reason in refused:
            log.warning("source rss %s: entry skipped: %s", self.config["url"], reason)
        return parsed, items, refused

    def test(self) -> SourceCheck:
        try:
            parsed, items, refused = self._parse(self._download(conditional=False))
        except SourceError as exc:
            return SourceCheck(False, str(exc))
        title = one_line(parsed.feed.get("title") or "") or self.config["url"]
        detail = f"{title}: {len(items)} items ({parsed.get('version')})"
        if refused:
            detail += f"; {len(refused)} entries skipped, first: {refused[0]}"
        return SourceCheck(True, detail, tuple(items[:3]))

    def fetch(self, since: datetime | None) -> list[SourceItem]:
        conditional = bool(self._setting("conditional_get"))
        resp = self._download(conditional=conditional)
        if resp.status == 304:
            return []
        _parsed, items, _refused = self._parse(resp)
        if conditional:  # only once the feed parsed: a broken answer must not earn a 304 next time
            self.validators = resp.validators
        return items


@hookimpl
def register_sources(register):  # type: ignore[no-untyped-def]
    register(RssSource)
