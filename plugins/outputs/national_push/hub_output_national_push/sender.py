"""One report POSTed to the national system, and what its answer means.

2xx: received (200 with `duplicate` too: the receiver already had this report_id). Connection
errors, timeouts, 5xx, 408, 425 and 429 are transient: OutputError(transient=True), which the
outputs runner retries with backoff. Any other answer (3xx, 4xx) is a refusal the same bytes would
get again: OutputError naming the status and the receiver's reason, not retried. Redirects are
not followed — they would carry the province's token elsewhere.
"""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from hub.addresses import AddressPolicy, default_policy
from hub.output import OutputError

from hub_output_national_push import __version__

TRANSIENT_STATUSES = frozenset({408, 425, 429})
MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = f"hub-output-national-push/{__version__}"


class ReportRefused(OutputError):
    """The receiver refused the report (a 3xx or 4xx other than the transient ones); `status` is
    its HTTP status. Never transient."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, transient=False)
        self.status = status


def check_url(url: str, policy: AddressPolicy | None = None) -> str | None:
    """Why `url` cannot receive reports, or None: http(s) only, no credentials in it (the token
    goes in a header), never one of the hub's own services (Redis, the database, the API…)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a URL: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r}: an http:// or https:// URL with a host"
    if parts.username or parts.password:
        return "credentials in the URL would be logged; the token goes in `token`"
    port = port or (443 if parts.scheme == "https" else 80)
    own = (policy or default_policy()).own_service(parts.hostname, port)
    if own is not None:
        return f"{parts.hostname}:{port} is the hub's own {own}, not the national system"
    return None


def redacted(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?…" if parts.query else "")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def _reason(raw: bytes) -> str:
    """The receiver's own words: its JSON `error`, or the start of its text."""
    text = raw[:MAX_ANSWER_BYTES].decode("utf-8", "replace")
    try:
        answer = json.loads(text)
        if isinstance(answer, dict) and answer.get("error"):
            return str(answer["error"])[:300]
    except ValueError:
        pass
    return " ".join(text.split())[:300] or "no reason given"


def post_report(url: str, token: str, report: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """POST `report` with `Idempotency-Key: report_id`; the receiver's JSON answer ({} when none).
    Raises OutputError as the module's docstring says."""
    body = json.dumps(report, ensure_ascii=False, allow_nan=False).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8",
        "Accept": "application/json", "Idempotency-Key": report["report_id"], "User-Agent": USER_AGENT})
    where = redacted(url)
    try:
        with _OPENER.open(request, timeout=timeout_s) as resp:
            raw = resp.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as exc:
        status, reason = exc.code, _reason(exc.read(MAX_ANSWER_BYTES) if exc.fp else b"")
        exc.close()
        text = f"{where} answered HTTP {status} to report {report['report_id']}: {reason}"
        if status >= 500 or status in TRANSIENT_STATUSES:
            raise OutputError(text, transient=True) from None
        if status in (401, 403):
            text += " — the national system refused the token (setting `token`); fix it and the output starts anew"
        raise ReportRefused(text, status) from None
    except (urllib.error.URLError, OSError, socket.timeout) as exc:
        why = getattr(exc, "reason", None) or exc
        raise OutputError(f"cannot reach {where}: {why}", transient=True) from None
    try:
        answer = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except ValueError:
        answer = {}
    return answer if isinstance(answer, dict) else {}
