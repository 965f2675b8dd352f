"""A feed's bytes over HTTP, the way a careful feed reader gets them.

feedparser can fetch by itself, but with no timeout (a feed server that accepts the connection and
never answers would hold a polling worker forever), so the plugin fetches and hands feedparser
bytes. One deadline covers the whole download, not each socket read; the body is capped (a feed
is small, a misconfigured URL may be a video); gzip is accepted; ETag and Last-Modified make the
next request conditional. Only http and https are opened, and a redirect to anything else is
refused: urllib's default opener would also follow ftp:// and open file:// URLs.
"""
from __future__ import annotations

import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urljoin, urlsplit

from hub_source_rss import __version__

USER_AGENT = f"hub-source-rss/{__version__} (feed reader of a grassroots information hub)"
CHUNK = 64 * 1024


class FetchError(Exception):
    """The feed could not be read; `transient`: a later try may succeed (timeout, 5xx, refused)."""

    def __init__(self, message: str, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


@dataclass(frozen=True)
class Validators:
    """What the server said about this version of the feed, sent back to ask "changed since?"."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Response:
    status: int  # 200, or 304 (not modified: body empty)
    body: bytes
    headers: dict[str, str]  # lower-case names
    url: str  # after redirects: the base for relative links in the feed
    validators: Validators


def check_url(url: str) -> str:
    """The URL if it is http(s) with a host; ValueError saying why not."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"{url!r} is not an http:// or https:// URL (the {parts.scheme or 'missing'} scheme "
                         f"is refused: a source reads feeds from web servers only)")
    if not parts.hostname:
        raise ValueError(f"{url!r} has no host")
    return url


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) only, and says so (urllib's own refusal reads "HTTP 302")."""

    def http_error_302(self, req, fp, code, msg, headers):  # type: ignore[no-untyped-def]
        target = urljoin(req.full_url, headers.get("location") or headers.get("uri") or "")
        if urlsplit(target).scheme.lower() not in ("http", "https"):
            fp.close()
            raise FetchError(f"{req.full_url} redirects to {target}, which is not http(s); refused", False, code)
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _opener() -> urllib.request.OpenerDirector:
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
                    urllib.request.HTTPDefaultErrorHandler(), _HttpOnlyRedirects(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def _headers(message: Message) -> dict[str, str]:
    return {k.lower(): v for k, v in message.items()}


def _timed_out(url: str, timeout_s: float) -> FetchError:
    return FetchError(f"timed out after {timeout_s:g} s waiting for {url}", True)


def _read(resp, url: str, deadline: float, timeout_s: float, max_bytes: int) -> bytes:  # type: ignore[no-untyped-def]
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise _timed_out(url, timeout_s)
        chunk = resp.read1(CHUNK) if hasattr(resp, "read1") else resp.read(CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(f"{url} sent more than {max_bytes} bytes; not a feed, or raise max_bytes", False)
        chunks.append(chunk)


def _decoded(body: bytes, encoding: str, url: str, max_bytes: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise FetchError(f"{url} answered with Content-Encoding {encoding!r}, which this reader does not decode",
                         False)
    # gzip has a header (wbits 16+); "deflate" is zlib-wrapped by the standard, raw by some servers
    for wbits in ((16 + zlib.MAX_WBITS,) if encoding != "deflate" else (zlib.MAX_WBITS, -zlib.MAX_WBITS)):
        try:
            out = zlib.decompressobj(wbits).decompress(body, max_bytes + 1)
        except zlib.error:
            continue
        if len(out) > max_bytes:
            raise FetchError(f"{url}: the feed is more than {max_bytes} bytes once decompressed", False)
        return out
    raise FetchError(f"{url}: the {encoding} body does not decompress", False)


def get(url: str, *, timeout_s: float, headers: dict[str, str] | None = None,
        validators: Validators | None = None, max_bytes: int = 5_000_000) -> Response:
    """GET `url`; Response(304) when `validators` match, FetchError for anything but 2xx/304."""
    check_url(url)
    request = urllib.request.Request(url, headers={
        "User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate",
        "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1",
        **(headers or {})})
    if validators is not None and validators.etag:
        request.add_header("If-None-Match", validators.etag)
    if validators is not None and validators.last_modified:
        request.add_header("If-Modified-Since", validators.last_modified)
    deadline = time.monotonic() + timeout_s
    try:
        with _opener().open(request, timeout=timeout_s) as resp:
            body = _read(resp, url, deadline, timeout_s, max_bytes)
            got = _headers(resp.headers)
            final = resp.geturl()
            status = resp.status
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 304:
            return Response(304, b"", _headers(exc.headers), url, validators or Validators())
        # 408 Request Timeout and 429 Too Many Requests pass; other 4xx mean the configuration is wrong
        raise FetchError(f"HTTP {exc.code} from {url}", exc.code >= 500 or exc.code in (408, 429), exc.code) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise _timed_out(url, timeout_s) from None
        raise FetchError(f"cannot reach {url}: {exc.reason}", True) from None
    except TimeoutError:
        raise _timed_out(url, timeout_s) from None
    except OSError as exc:  # reset by peer, a broken chunked body
        raise FetchError(f"cannot read {url}: {exc}", True) from None
    body = _decoded(body, got.get("content-encoding", ""), url, max_bytes)
    return Response(status, body, got, final, Validators(got.get("etag"), got.get("last-modified")))
