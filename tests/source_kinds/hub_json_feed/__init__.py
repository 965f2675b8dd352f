"""A source reading a JSON list of items over HTTP: what an RSS source does, without the format."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, fields

from hub.hookspecs import hookimpl
from hub.source import Source, SourceCheck, SourceError, SourceItem, SourceManifest


class ConfigSchema(Schema):
    class Meta:
        unknown = RAISE

    url = fields.Str(required=True)
    token = fields.Str(load_default=None)  # sent as a bearer token, to test ${ENV} credentials
    timeout_s = fields.Float(load_default=5.0)


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class JsonFeed(Source):
    manifest = SourceManifest(name="json_feed", title="Items from a JSON document over HTTP", version="0.1.0",
                              config_schema=ConfigSchema, formats=("json",), min_interval_s=0.1)

    def _get(self) -> list[dict[str, Any]]:
        url = self.config["url"]
        request = urllib.request.Request(url)
        if self.config.get("token"):
            request.add_header("Authorization", f"Bearer {self.config['token']}")
        try:
            with urllib.request.urlopen(request, timeout=self.config["timeout_s"]) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            raise SourceError(f"HTTP {exc.code} from {url}", transient=exc.code >= 500) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise SourceError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}", transient=True) from None
        try:
            rows = json.loads(body)
        except ValueError as exc:
            raise SourceError(f"{url} is not JSON: {exc}") from None
        if not isinstance(rows, list):
            raise SourceError(f"{url}: expected a JSON list of items")
        return rows

    def _item(self, row: dict[str, Any]) -> SourceItem:
        keys = ("external_id", "title", "text", "language", "url", "severity", "category", "area_codes",
                "replaces", "withdraws", "exercise")
        return SourceItem(**{k: (tuple(row[k]) if isinstance(row[k], list) else row[k]) for k in keys if k in row},
                          published_at=_when(row.get("published_at")), expires_at=_when(row.get("expires_at")),
                          polygons=tuple(tuple(tuple(p) for p in ring) for ring in row.get("polygons", ())))

    def test(self) -> SourceCheck:
        try:
            rows = self._get()
            return SourceCheck(True, f"{len(rows)} items", tuple(self._item(r) for r in rows[:3]))
        except (SourceError, TypeError, KeyError) as exc:
            return SourceCheck(False, str(exc))

    def fetch(self, since: datetime | None) -> list[SourceItem]:
        try:
            return [self._item(r) for r in self._get()]
        except (TypeError, KeyError) as exc:
            raise SourceError(f"{self.config['url']}: an item is malformed: {exc}") from None


@hookimpl
def register_sources(register: Any) -> None:
    register(JsonFeed)
