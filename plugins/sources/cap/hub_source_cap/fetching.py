"""Getting CAP documents over HTTP: one alert, or an Atom/RSS index whose entries link to alerts.

Every request has a timeout and a size cap, and only http/https is followed, also on redirects and in
index links: an index is data from outside, and a `file:` link in it must not read this machine's files.
"""
from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree

from hub.source import SourceError

ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPES = ("application/cap+xml", "application/common-alerting-protocol+xml")
ACCEPT = "application/cap+xml, application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.5"
SCHEMES = ("http", "https")


@dataclass(frozen=True)
class IndexEntry:
    url: str
    updated: datetime | None = None  # what the index says; None when it says nothing usable


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if urlsplit(newurl).scheme.lower() not in SCHEMES:
            raise urllib.error.HTTPError(req.full_url, code, f"redirect to a non-HTTP URL {newurl!r} refused",
                                         headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_HttpOnlyRedirects)


def check_url(url: str, what: str = "url") -> str:
    if urlsplit(url).scheme.lower() not in SCHEMES or not urlsplit(url).netloc:
        raise SourceError(f"{what} {url!r}: only http:// and https:// URLs are read")
    return url


def http_get(url: str, timeout: float, max_bytes: int, headers: Mapping[str, str] | None = None) -> bytes:
    """The body at `url`. Network trouble, timeouts, 5xx, 408 and 429 are transient; other HTTP errors
    (404, 401…) mean the configuration is wrong and say so."""
    check_url(url)
    req = urllib.request.Request(url, headers={"Accept": ACCEPT, "User-Agent": "hub-source-cap",
                                               **dict(headers or {})})
    try:
        with _opener.open(req, timeout=timeout) as resp:
            data = resp.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        transient = exc.code >= 500 or exc.code in (408, 429)
        raise SourceError(f"HTTP {exc.code} {exc.reason} from {url}", transient=transient) from None
    except urllib.error.URLError as exc:
        raise SourceError(f"cannot reach {url}: {exc.reason}", transient=True) from None
    except (TimeoutError, OSError) as exc:  # a read that times out after the headers came
        raise SourceError(f"cannot read {url}: {exc or type(exc).__name__}", transient=True) from None
    if len(data) > max_bytes:
        raise SourceError(f"{url}: more than {max_bytes} bytes (max_bytes)")
    return data


def _atom_time(text: str | None) -> datetime | None:
    try:
        value = datetime.fromisoformat((text or "").strip())
    except ValueError:
        return None
    return value if value.utcoffset() is not None else None


def _rss_time(text: str | None) -> datetime | None:
    try:
        value = parsedate_to_datetime((text or "").strip())
    except (TypeError, ValueError, IndexError):
        return None
    return value if value.utcoffset() is not None else None


def _atom_link(entry: etree._Element) -> str | None:
    links = entry.findall(f"{{{ATOM_NS}}}link")
    for link in links:  # a link that says it is CAP first, then the entry's own page
        if (link.get("type") or "").split(";")[0].strip().lower() in CAP_MEDIA_TYPES:
            return link.get("href")
    for link in links:
        if link.get("rel") in (None, "alternate") and link.get("href"):
            return link.get("href")
    return links[0].get("href") if links else None


def index_entries(root: etree._Element, base_url: str) -> list[IndexEntry] | None:
    """The alerts an Atom or RSS 2.0 index links to (None: `root` is neither). Links are resolved
    against the index's URL; non-HTTP links are refused here, before anything is fetched."""
    found: list[IndexEntry] = []
    if root.tag == f"{{{ATOM_NS}}}feed":
        for entry in root.iterfind(f"{{{ATOM_NS}}}entry"):
            href = _atom_link(entry)
            if href:
                when = entry.findtext(f"{{{ATOM_NS}}}updated") or entry.findtext(f"{{{ATOM_NS}}}published")
                found.append(IndexEntry(urljoin(base_url, href.strip()), _atom_time(when)))
    elif root.tag == "rss":
        for item in root.iterfind("channel/item"):
            href = next((e.get("url") for e in item.iterfind("enclosure")
                         if (e.get("type") or "").lower() in CAP_MEDIA_TYPES and e.get("url")), None)
            href = href or (item.findtext("link") or "").strip()
            if href:
                found.append(IndexEntry(urljoin(base_url, href.strip()), _rss_time(item.findtext("pubDate"))))
    else:
        return None
    return found


__all__ = ["ATOM_NS", "IndexEntry", "check_url", "http_get", "index_entries"]
