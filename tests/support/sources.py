"""What the source tests share: the test source plugin (tests/source_kinds), sources files that
a running poller notices, and the items a feed serves."""
from __future__ import annotations

import importlib
import os
import time
from pathlib import Path
from typing import Any

import yaml

from hub.plugins import Plugins
from hub.runtime import Runtime
from hub.testing import purge_queues

SOURCE_KINDS = Path(__file__).resolve().parents[1] / "source_kinds"


def register_json_feed(plugins: Plugins) -> None:
    """The json_feed source, from tests/source_kinds (the caller puts that directory on sys.path)."""
    plugins.register_module(importlib.import_module("hub_json_feed"), "json_feed", group="hub.sources")


def entry(name: str, url: str, **extra: Any) -> dict[str, Any]:
    """A sources-file entry for a json_feed source in the test province (area 80)."""
    return {"name": name, "plugin": "json_feed", "url": url, "interval_s": 0.5, "area_code": "80", **extra}


def write_sources(path: Path, *entries: dict[str, Any], text: str | None = None) -> None:
    """Write the file as an administrator would, its mtime moved on so that a poller sees the change."""
    path.write_text(text if text is not None else yaml.safe_dump({"sources": list(entries)}, allow_unicode=True),
                    encoding="utf-8")
    now = time.time_ns()
    os.utime(path, ns=(now, now))


def item(eid: str, title: str, **extra: Any) -> dict[str, Any]:
    return {"external_id": eid, "title": title, "text": f"Nội dung {title}", "language": "vi",
            "published_at": "2026-07-01T07:00:00+07:00", **extra}


def clean_sources_queue(rt: Runtime) -> None:
    """Remove the sources queue and the poll locks this test's queue prefix left in Redis."""
    purge_queues(rt.redis, [rt.queue_name("sources")])
    for key in rt.redis.scan_iter(f"{rt.settings.queue}:source-poll:*"):
        rt.redis.delete(key)
