"""A content source reading a JSON file of items (what an RSS source does over HTTP)."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from marshmallow import RAISE, Schema, fields

from hub.hookspecs import hookimpl
from hub.source import Source, SourceCheck, SourceError, SourceItem, SourceManifest


class ConfigSchema(Schema):
    class Meta:
        unknown = RAISE

    path = fields.Str(required=True)
    language = fields.Str(load_default="vi")


class SampleFeed(Source):
    manifest = SourceManifest(name="sample_feed", title="Items from a JSON file", version="0.1.0",
                              config_schema=ConfigSchema, formats=("json",), min_interval_s=30)

    def _read(self) -> list[dict]:
        try:
            return json.loads(Path(self.config["path"]).read_text(encoding="utf-8"))
        except OSError as exc:
            raise SourceError(f"cannot read {self.config['path']}: {exc.strerror}", transient=True) from None
        except ValueError as exc:
            raise SourceError(f"{self.config['path']} is not JSON: {exc}") from None

    def _item(self, row: dict) -> SourceItem:
        return SourceItem(external_id=row["id"], title=row["title"], text=row.get("text", ""),
                          language=row.get("language", self.config["language"]),
                          published_at=datetime.fromisoformat(row["published_at"]), url=row.get("url"),
                          severity=row.get("severity"), raw=row)

    def test(self) -> SourceCheck:
        try:
            rows = self._read()
            return SourceCheck(True, f"{len(rows)} items", tuple(self._item(r) for r in rows[:3]))
        except (SourceError, KeyError) as exc:
            return SourceCheck(False, str(exc))

    def fetch(self, since: datetime | None) -> list[SourceItem]:
        items = [self._item(r) for r in self._read()]
        return [i for i in items if since is None or i.published_at > since]


@hookimpl
def register_sources(register):
    register(SampleFeed)
