"""One feed entry (as feedparser reads it) → one hub SourceItem.

The id must stay the same on every fetch, or the hub would make a new draft each time: the
entry's guid (RSS) or id (Atom) first, then its link, and for an entry with neither a hash of
its title and date (an edited title then makes a new item; nothing better is stable).
"""
from __future__ import annotations

import calendar
import hashlib
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from hub.source import MAX_EXTERNAL_ID, MediaRef, SourceItem

from hub_source_rss.plaintext import html_to_text, language_tag, one_line, plain

RAW_FIELDS = ("id", "guidislink", "link", "title", "published", "updated", "author")


def _get(entry: Any, key: str) -> Any:
    # not entry.get(): feedparser answers `updated` with `published` when an entry has only the
    # latter (and warns); `in` looks at what the entry really has
    return entry[key] if key in entry else None


def _when(entry: Any, *keys: str) -> datetime | None:
    # feedparser normalises every date it understands to a UTC struct_time
    for key in keys:
        parsed = _get(entry, f"{key}_parsed")
        if parsed:
            return datetime.fromtimestamp(calendar.timegm(parsed), timezone.utc)
    return None


def external_id(entry: Any) -> str:
    """guid / id, else link, else "sha256:" of title and date; hashed when longer than the hub keeps."""
    for key in ("id", "link"):
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            value = value.strip()
            if len(value) <= MAX_EXTERNAL_ID:
                return value
            return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    basis = "\n".join(str(_get(entry, k) or "") for k in ("title", "published", "updated"))
    return "sha256:" + hashlib.sha256(basis.encode()).hexdigest()


def _body(entry: Any) -> tuple[str, str | None]:
    """The fullest text the entry has (Atom content, content:encoded, else summary) and its xml:lang."""
    for detail in list(entry.get("content") or []) + [entry.get("summary_detail")]:
        if detail and (detail.get("value") or "").strip():
            value = detail["value"]
            text = html_to_text(value) if "html" in (detail.get("type") or "html") else plain(value)
            return text, detail.get("language")
    return "", None


def _attachments(entry: Any) -> tuple[MediaRef, ...]:
    refs: list[MediaRef] = []
    seen: set[str] = set()
    for enc in entry.get("enclosures") or []:
        url = (enc.get("href") or enc.get("url") or "").strip()
        # the hub fetches attachments later: never a file:// or other non-web URL a feed slipped in
        if not url or url in seen or urlsplit(url).scheme.lower() not in ("http", "https"):
            continue
        seen.add(url)
        length = str(enc.get("length") or "").strip()
        refs.append(MediaRef(url, (enc.get("type") or None), int(length) if length.isdigit() and
                             int(length) > 0 else None))
    return tuple(refs)


def _category(entry: Any) -> str | None:
    for tag in entry.get("tags") or []:
        name = one_line(tag.get("label") or tag.get("term") or "")
        if name:
            return name
    return None


def to_item(entry: Any, feed_language: str | None) -> SourceItem:
    text, body_language = _body(entry)
    title = one_line(entry.get("title") or "") or (text.split("\n", 1)[0][:120] if text else "")
    link = (entry.get("link") or "").strip() or None
    language = (language_tag(body_language) or language_tag((entry.get("title_detail") or {}).get("language"))
                or feed_language)
    raw = {k: str(entry[k]) for k in RAW_FIELDS if _get(entry, k) not in (None, "")}
    return SourceItem(external_id=external_id(entry), title=title, text=text, language=language,
                      published_at=_when(entry, "published", "updated", "created"),
                      url=link if link and urlsplit(link).scheme.lower() in ("http", "https") else None,
                      attachments=_attachments(entry), category=_category(entry), raw=raw)
