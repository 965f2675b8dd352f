"""The API's default authenticator: an API token (`Authorization: Bearer …`) or the console's
session cookie, and for the cookie a CSRF token on every unsafe request.

A browser attaches the cookie to any request to the hub, including one a page of another site
makes it send; it never attaches the `X-CSRF-Token` header, whose value only the hub's own
console (which got it at login) knows. Bearer tokens are not sent by browsers on their own, so
they need no CSRF token. An HTML form may carry the token in a `csrf_token` field instead of the header.
"""
from __future__ import annotations

import hmac
from datetime import timedelta

import flask
from flask import Request

from hub.access import accounts
from hub.access.actors import Actor, Forbidden, Unauthenticated
from hub.store.db import utcnow
from hub.access.permissions import SAFE_METHODS
from hub.runtime import Runtime

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"  # the same token, in a form's hidden field
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
SESSION_KEY = "sid"
LAST_SEEN_GRANULARITY = timedelta(seconds=60)


def _form_token(request: Request) -> str:
    """The CSRF token of an HTML form (the console's forms carry it as a hidden field, so that they
    work without scripts). Read only from a form body: the API refuses those bodies anyway."""
    if request.mimetype not in FORM_TYPES:
        return ""
    value = request.form.get(CSRF_FIELD, "")
    return value if isinstance(value, str) else ""


class AccountsAuthenticator:
    def __init__(self, rt: Runtime, secret_key: str) -> None:
        self.rt = rt
        self.secret_key = secret_key

    def __call__(self, request: Request) -> Actor:
        header = request.headers.get("Authorization")
        if header is not None:
            return self._bearer(header)
        sid = flask.session.get(SESSION_KEY)
        if isinstance(sid, str) and sid:
            return self._session(sid, request)
        raise Unauthenticated("sign in first (POST /api/auth/login) or send an API token "
                              "(Authorization: Bearer <token>)")

    def _bearer(self, header: str) -> Actor:
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthenticated("the Authorization header must be `Bearer <token>`")
        with self.rt.db.session() as s:
            token = accounts.find_token(s, raw.strip())
            if token is None:
                raise Unauthenticated("invalid or revoked API token")
            if token.user.disabled:
                raise Unauthenticated(f"the account of this token ({token.user.name}) is disabled")
            accounts.touch_token(token)
            return accounts.actor_for(s, token.user, f"token:{token.id}", token)

    def _session(self, sid: str, request: Request) -> Actor:
        with self.rt.db.session() as s:
            row = accounts.find_session(s, sid)
            if row is None or row.user.disabled:
                flask.session.clear()
                raise Unauthenticated("the session has ended (expired, signed out or the account changed); "
                                      "sign in again")
            if request.method not in SAFE_METHODS:
                sent = request.headers.get(CSRF_HEADER) or _form_token(request)
                if not hmac.compare_digest(sent.encode(), accounts.csrf_token(self.secret_key, sid).encode()):
                    raise Forbidden(f"missing or wrong {CSRF_HEADER} header: a request made with the session "
                                    f"cookie must carry the CSRF token given at sign-in (GET /api/auth/me)")
            now = utcnow()
            if now - row.last_seen_at >= LAST_SEEN_GRANULARITY:
                row.last_seen_at = now
            flask.g.session_id = sid
            return accounts.actor_for(s, row.user, "session")
