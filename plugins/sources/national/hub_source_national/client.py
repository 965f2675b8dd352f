"""JSON over HTTP with the configured authentication, for pulling bulletins and pushing statistics.

Every request has a timeout; 401/403 become an error that names the authentication (the usual
cause is an expired or mistyped credential, which no retry fixes); a token from a token endpoint
is kept until shortly before it expires and fetched again once when the server refuses it.
Credentials are sent only to the configured base URL's origin: a `next` link to another host is
refused rather than followed with the province's token.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from hub.source import SourceError

from hub_source_national import __version__
from hub_source_national.mapping import dig

USER_AGENT = f"hub-source-national/{__version__}"
MAX_BYTES = 20_000_000
TOKEN_MARGIN_S = 30  # renew a token this long before the server says it expires


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def check_url(url: str) -> str:
    scheme, host, _port = origin(url)
    if scheme not in ("http", "https") or not host:
        raise ValueError(f"{url!r} is not an http:// or https:// URL with a host")
    return url


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # an API that redirects would carry the Authorization header elsewhere; say so instead
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


def _opener() -> urllib.request.OpenerDirector:
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
                    urllib.request.HTTPDefaultErrorHandler(), _NoRedirects(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


class Client:
    """One configured connection: base URL, auth settings, timeout."""

    def __init__(self, base_url: str, auth: dict[str, Any], timeout_s: float) -> None:
        self.base_url = check_url(base_url.rstrip("/") + "/")
        self.auth = auth
        self.timeout_s = timeout_s
        self._token: str | None = None
        self._token_until = 0.0

    def url(self, path_or_url: str, query: dict[str, Any] | None = None) -> str:
        """A configured path under the base URL ("/v1/items" and "v1/items" both go below the
        base's own path), or a full URL on the base URL's host, with `query` added."""
        parts = urllib.parse.urlsplit(path_or_url)
        url = path_or_url if parts.scheme else urllib.parse.urljoin(self.base_url, path_or_url.lstrip("/"))
        return self._same_origin(url, query)

    def follow(self, current: str, link: str) -> str:
        """A link the server gave (a `next` page), resolved as a browser would against `current`."""
        return self._same_origin(urllib.parse.urljoin(current, link), None)

    def _same_origin(self, url: str, query: dict[str, Any] | None) -> str:
        if origin(url) != origin(self.base_url):
            raise SourceError(f"{url} is not on {self.base_url}'s host; credentials are never sent elsewhere")
        if query:
            joiner = "&" if urllib.parse.urlsplit(url).query else "?"
            url += joiner + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        return url

    def _raw(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        request = urllib.request.Request(url, data=body, method=method,
                                         headers={"User-Agent": USER_AGENT, "Accept": "application/json", **headers})
        try:
            with _opener().open(request, timeout=self.timeout_s) as resp:
                data = resp.read(MAX_BYTES + 1)
                if len(data) > MAX_BYTES:
                    raise SourceError(f"{url} sent more than {MAX_BYTES} bytes", transient=False)
                return resp.status, data
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode("utf-8", "replace").strip()
            exc.close()
            return exc.code, detail.encode()
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise SourceError(f"timed out after {self.timeout_s:g} s waiting for {url}", transient=True) from None
            raise SourceError(f"cannot reach {url}: {exc.reason}", transient=True) from None
        except TimeoutError:
            raise SourceError(f"timed out after {self.timeout_s:g} s waiting for {url}", transient=True) from None
        except OSError as exc:
            raise SourceError(f"cannot read {url}: {exc}", transient=True) from None

    def _fetch_token(self) -> str:
        auth = self.auth
        url = self.url(auth["token_url"])
        fields = {"grant_type": "client_credentials", "client_id": auth["client_id"],
                  "client_secret": auth["client_secret"], **({"scope": auth["scope"]} if auth.get("scope") else {})}
        if auth.get("token_format", "form") == "json":
            body, kind = json.dumps(fields).encode(), "application/json"
        else:
            body, kind = urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded"
        status, data = self._raw("POST", url, body, {"Content-Type": kind})
        if status in (400, 401, 403):
            raise SourceError(f"authentication refused by the token endpoint {url} (HTTP {status}): check "
                              f"client_id and client_secret", transient=False)
        answer = _json(status, data, url)
        token = dig(answer, auth.get("token_field", "access_token"))
        if not isinstance(token, str) or not token:
            raise SourceError(f"the token endpoint {url} answered without a token in "
                              f"{auth.get('token_field', 'access_token')!r}")
        lifetime = answer.get("expires_in") if isinstance(answer, dict) else None
        self._token = token
        self._token_until = time.monotonic() + (float(lifetime) - TOKEN_MARGIN_S
                                                if isinstance(lifetime, int | float) else 3600)
        return token

    def _auth_headers(self, renew: bool = False) -> dict[str, str]:
        kind = self.auth.get("type", "none")
        if kind == "bearer":
            return {"Authorization": f"Bearer {self.auth['token']}"}
        if kind == "header":
            return {self.auth["header_name"]: self.auth["header_value"]}
        if kind == "token_endpoint":
            if renew or self._token is None or time.monotonic() >= self._token_until:
                self._fetch_token()
            return {"Authorization": f"Bearer {self._token}"}
        return {}

    def request(self, method: str, url: str, payload: Any = None) -> Any:
        """The decoded JSON answer of a 2xx; SourceError otherwise (naming auth on 401/403)."""
        body = None if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"} if body is not None else {}
        status, data = self._raw(method, url, body, {**headers, **self._auth_headers()})
        if status == 401 and self.auth.get("type") == "token_endpoint":  # revoked or expired early: once more
            status, data = self._raw(method, url, body, {**headers, **self._auth_headers(renew=True)})
        if status in (401, 403):
            raise SourceError(f"authentication refused by {url} (HTTP {status}) with auth type "
                              f"{self.auth.get('type', 'none')!r}: check the credentials", transient=False)
        return _json(status, data, url)


def _json(status: int, data: bytes, url: str) -> Any:
    if not 200 <= status < 300:
        detail = data.decode("utf-8", "replace")[:200]
        raise SourceError(f"HTTP {status} from {url}" + (f": {detail}" if detail else ""),
                          transient=status >= 500 or status in (408, 429))
    if not data.strip():
        return None
    try:
        return json.loads(data.decode("utf-8-sig"))
    except ValueError as exc:
        raise SourceError(f"{url} did not answer JSON: {exc}") from None
