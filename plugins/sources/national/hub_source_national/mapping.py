"""Where each bulletin field sits in the national system's JSON items: configuration, not code.

The exchange format of the national source-information system is not public, so nothing here
assumes one. A province writes, per field, a dotted path into each item ("content.text",
"areas.0.code") and a table from the system's severity values to the hub's three classes.
"""
from __future__ import annotations

import mimetypes
import unicodedata
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit

from hub.capabilities import PRIORITIES
from hub.source import MediaRef, SourceError, SourceItem

FIELDS = ("external_id", "title", "text", "published_at", "expires_at", "area_codes", "severity", "category",
          "audio_url", "url", "language")
VIETNAM = timezone(timedelta(hours=7))


def dig(value: Any, path: str) -> Any:
    """value["a"]["b"][0]… for path "a.b.0"; None where a step is missing. "" is the value itself."""
    if not path:
        return value
    for step in path.split("."):
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.lstrip("-").isdigit() and -len(value) <= int(step) < len(value):
            value = value[int(step)]
        else:
            return None
        if value is None:
            return None
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int | float):
        raise SourceError(f"expected text, got {type(value).__name__}")
    return unicodedata.normalize("NFC", str(value)).strip()


def parse_time(value: Any, naive_tz: timezone = VIETNAM) -> datetime | None:
    """ISO 8601 text or a Unix time (seconds, or milliseconds when that large); a time without an
    offset is read in `naive_tz` (Vietnam's UTC+7 by default), never guessed to be UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, timezone.utc)
    if not isinstance(value, str):
        raise SourceError(f"{value!r} is not a date and time")
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise SourceError(f"{value!r} is not an ISO 8601 date and time") from None
    return when if when.utcoffset() is not None else when.replace(tzinfo=naive_tz)


def _codes(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(c.strip() for c in value.split(",") if c.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return (str(value),)
    if isinstance(value, list):
        return tuple(c for v in value for c in _codes(v))
    raise SourceError(f"area codes {value!r}: expected a code, a comma-separated text or a list")


def severity(value: Any, table: dict[str, str]) -> str | None:
    """The hub class for the system's value by the configured table; the hub's own names pass;
    anything else is no hint (the editor decides) rather than a guess."""
    if value is None or isinstance(value, dict | list):
        return None
    key = str(value).strip()
    mapped = table.get(key, table.get(key.lower()))
    if mapped is not None:
        return mapped
    return key.lower() if key.lower() in PRIORITIES else None


def to_item(row: Any, paths: dict[str, str], severity_map: dict[str, str], base_url: str,
            default_language: str | None, naive_tz: timezone = VIETNAM) -> SourceItem:
    """One JSON item → SourceItem by the configured paths; SourceError naming the field otherwise."""
    if not isinstance(row, dict):
        raise SourceError(f"an item is a {type(row).__name__}, not a JSON object")

    def get(name: str) -> Any:
        path = paths.get(name)
        return dig(row, path) if path else None

    external_id = _text(get("external_id"))
    if not external_id:
        raise SourceError(f"an item has no external_id at {paths.get('external_id')!r}")
    try:
        audio = _text(get("audio_url"))
        audio_url = urljoin(base_url, audio) if audio else ""
        link = _text(get("url"))
        attachments = (MediaRef(audio_url, mimetypes.guess_type(urlsplit(audio_url).path)[0] or None),) if (
            audio_url and urlsplit(audio_url).scheme in ("http", "https")) else ()
        return SourceItem(
            external_id=external_id, title=_text(get("title")), text=_text(get("text")),
            language=_text(get("language")) or default_language,
            published_at=parse_time(get("published_at"), naive_tz), expires_at=parse_time(get("expires_at"), naive_tz),
            area_codes=_codes(get("area_codes")), severity=severity(get("severity"), severity_map),
            category=_text(get("category")) or None, attachments=attachments,
            url=urljoin(base_url, link) if link else None, raw=row)
    except SourceError as exc:
        raise SourceError(f"item {external_id!r}: {exc}") from None
