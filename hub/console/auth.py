"""Signing in and out of the console, the language switch, and the hub's front door `/`.

Sign-in uses the accounts and the throttle the API uses (hub.access.sign_in). Its form carries a
token kept in the (signed) cookie before any session exists, so that another site cannot sign a
browser in to an account of its choosing; every other form carries the session's CSRF token.
"""
from __future__ import annotations

import hmac
import secrets
from typing import Any

import flask
from flask_babel import gettext as _

from hub.access import accounts, audit
from hub.access.authenticate import SESSION_KEY
from hub.access.permissions import ANYONE, PUBLIC
from hub.access.sign_in import SignInRefused, sign_in
from hub.console.common import actor, console_blueprint, refuse, runtime, safe_next
from hub.console.i18n import LANG_COOKIE, LANGUAGES

bp = console_blueprint("console", __name__, static_folder="static", static_url_path="/console/static")

RULES = {"root": {"GET": ANYONE},
         "login": {"GET": PUBLIC, "POST": PUBLIC},
         "logout": {"POST": ANYONE},
         "language": {"GET": PUBLIC},
         "static": {"GET": PUBLIC}}

LOGIN_TOKEN_KEY = "login_csrf"
LANG_COOKIE_AGE_S = 365 * 24 * 3600
HOME = "console_dashboard.dashboard"


@bp.get("/")
def root() -> Any:
    """The hub's address opens the console (the door sent a browser without a session to sign in)."""
    return flask.redirect(flask.url_for(HOME))


def _signed_in() -> bool:
    """Whether this browser already holds a live session (the sign-in page is public, so its door
    did not look)."""
    sid = flask.session.get(SESSION_KEY)
    if not isinstance(sid, str) or not sid:
        return False
    with runtime().db.session() as s:
        row = accounts.find_session(s, sid)
        return row is not None and not row.user.disabled


def _login_page(error: str | None = None, name: str = "", status: int = 200) -> Any:
    token = secrets.token_urlsafe(24)
    flask.session[LOGIN_TOKEN_KEY] = token
    body = flask.render_template("login.html", error=error, name=name, login_token=token,
                                 next=flask.request.values.get("next", ""))
    return flask.make_response(body, status)


@bp.route("/console/login", methods=["GET", "POST"])
def login() -> Any:
    req = flask.request
    target = safe_next(req.values.get("next"), flask.url_for(HOME))
    if req.method == "GET":
        return flask.redirect(target) if _signed_in() else _login_page()
    expected = flask.session.pop(LOGIN_TOKEN_KEY, None)
    sent = req.form.get("login_token", "")
    if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        return _login_page(_("The sign-in form had expired. Please sign in again."), status=400)
    name, password = req.form.get("name", "").strip(), req.form.get("password", "")
    if not name or not password:
        return _login_page(_("Enter your account name and password."), name, 400)
    try:
        done = sign_in(runtime(), name, password, req.remote_addr)
    except SignInRefused as exc:
        sentence = {401: _("Wrong account name or password."),
                    429: _("Too many failed attempts. Try again in %(seconds)s seconds, or ask an administrator "
                           "to unlock the account.", seconds=exc.retry_after),
                    503: _("Signing in is unavailable right now (the hub cannot count attempts). Try again "
                           "shortly.")}[exc.status]
        resp = _login_page(sentence, name, exc.status)
        if exc.retry_after:
            resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    flask.session.clear()  # a new id at every sign-in: no session fixation
    flask.session[SESSION_KEY] = done.sid
    flask.session.permanent = True
    return flask.redirect(target)


@bp.post("/console/logout")
def logout() -> Any:
    sid = flask.g.get("session_id")
    if sid is None:
        return refuse(400, _("Only a console session can be signed out."))
    with runtime().db.session() as s:
        accounts.close_session(s, sid)
        audit.record(s, actor(), "logout", "user", actor().name)
    flask.session.clear()
    return flask.redirect(flask.url_for("console.login"))


@bp.get("/console/lang/<code>")
def language(code: str) -> Any:
    """Switch the console's language (a preference cookie; nothing else changes)."""
    resp = flask.redirect(safe_next(flask.request.args.get("next"), flask.url_for(HOME)))
    if code in LANGUAGES:
        resp.set_cookie(LANG_COOKIE, code, max_age=LANG_COOKIE_AGE_S, samesite="Lax", httponly=True,
                        secure=bool(runtime().settings.cookie_secure))
    return resp


__all__ = ["bp"]
