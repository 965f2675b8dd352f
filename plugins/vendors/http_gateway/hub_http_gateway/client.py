"""A small HTTP client for the gateway on the standard library (urllib): no dependency to add.

Every failure becomes a `GatewayError` that says whether retrying could help, in words an
operator can act on; the API key never appears in them.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from hub_http_gateway import __version__, protocol

MAX_RESPONSE_BYTES = 32 << 20  # the status of 10 000 devices is about 2 MB


class GatewayError(Exception):
    """A request to the gateway failed. `blocks_batch`: later requests of the same batch would
    fail the same way (link down, bad key), so they are not worth making."""

    def __init__(self, reason: str, *, transient: bool, blocks_batch: bool = False,
                 status: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.transient, self.blocks_batch, self.status = reason, transient, blocks_batch, status


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib forwards the Authorization header to wherever a redirect points; refusing
    # redirects keeps the API key on base_url.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class GatewayClient:
    def __init__(self, base_url: str, api_key: str, timeout_s: float, verify_tls: bool = True,
                 ca_file: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json",
                         "User-Agent": f"hub-http-gateway/{__version__}"}
        handlers: list[Any] = [urllib.request.ProxyHandler({}), _NoRedirect()]  # direct: no env proxies
        if urlsplit(self.base_url).scheme == "https":
            handlers.append(urllib.request.HTTPSHandler(context=tls_context(verify_tls, ca_file)))
        self._opener = urllib.request.build_opener(*handlers)

    def post_batch(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", protocol.BATCH_PATH, protocol.encode(request))

    def get_status(self) -> dict[str, Any]:
        return self._json("GET", protocol.STATUS_PATH)

    def ping(self) -> dict[str, Any]:
        return self._json("GET", protocol.PING_PATH)

    def _json(self, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        status, raw = self.request(method, path, body)
        try:
            return protocol.decode_object(raw, "answer")
        except protocol.ProtocolError as exc:
            # The gateway may have acted before garbling its answer; like a lost answer, worth
            # a retry (the command id lets it recognise the repeat).
            raise GatewayError(f"gateway answered HTTP {status} to {method} {path} but the {exc}",
                               transient=True, status=status) from None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """(status, body) of a 2xx answer; anything else raises GatewayError."""
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        req = urllib.request.Request(self.base_url + path, data=body, headers=headers, method=method)
        what = f"{method} {path}"
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                raw = resp.read(MAX_RESPONSE_BYTES + 1)
                if len(raw) > MAX_RESPONSE_BYTES:
                    raise GatewayError(f"gateway answer to {what} exceeds {MAX_RESPONSE_BYTES} bytes",
                                       transient=False, status=resp.status)
                return resp.status, raw
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, what) from None
        except urllib.error.URLError as exc:
            raise _link_error(exc.reason, what, self.timeout_s) from None
        except (OSError, http.client.HTTPException) as exc:  # timeouts while reading the body land here
            raise _link_error(exc, what, self.timeout_s) from None


def _snippet(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read(2000)
    except Exception:  # noqa: BLE001 - the status alone still says enough
        return ""
    try:
        text = str(protocol.decode_object(raw).get("error") or "")
    except protocol.ProtocolError:
        text = raw.decode("utf-8", "replace")
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return f": {text[:200]}" if text else ""


def _http_error(exc: urllib.error.HTTPError, what: str) -> GatewayError:
    code = exc.code
    if code in (401, 403):
        return GatewayError(f"gateway refused the API key (HTTP {code} to {what})", transient=False,
                            blocks_batch=True, status=code)
    if 300 <= code < 400:
        where = exc.headers.get("Location", "?") if exc.headers else "?"
        return GatewayError(f"gateway redirected {what} to {where} (HTTP {code}); redirects are not followed "
                            "so that the API key stays with base_url: fix base_url", transient=False,
                            blocks_batch=True, status=code)
    detail = _snippet(exc)
    if code >= 500 or code in (408, 425, 429):
        return GatewayError(f"gateway answered HTTP {code} to {what}{detail}", transient=True, status=code)
    return GatewayError(f"gateway rejected {what} with HTTP {code}{detail}", transient=False, status=code)


def _link_error(reason: object, what: str, timeout_s: float) -> GatewayError:
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return GatewayError(f"gateway timed out after {timeout_s:g}s ({what})", transient=True, blocks_batch=True)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return GatewayError(f"TLS verification of the gateway failed ({what}): {reason.verify_message or reason}",
                            transient=False, blocks_batch=True)
    if isinstance(reason, http.client.HTTPException):
        return GatewayError(f"gateway broke off the answer to {what}: {type(reason).__name__} {reason}".rstrip(),
                            transient=True, blocks_batch=True)
    return GatewayError(f"gateway unreachable ({what}): {reason}", transient=True, blocks_batch=True)
