"""What every page of the console shares: its door (who is signed in, which role may open the page),
the blueprint every page group is made with, the menu, and the answer to a refusal.

The console is served by the API's app (hub.api.create_app mounts it), and its pages go through the
same permission table (hub.access.permissions) as the API's endpoints; only the way a refusal is
told differs: a browser is sent to the sign-in page or shown a page in its reader's language, a
program still gets the API's JSON 401/403.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flask
from flask import Request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from hub.access import accounts, permissions
from hub.access.actors import Actor, Forbidden, Unauthenticated
from hub.console.i18n import LANGUAGES, chosen_language, word, zone_label
from hub.runtime import Runtime

PAGES_KEY = "hub.console.pages"  # app.extensions: blueprint name → its door, asked by the API's before_request
TEMPLATES = "templates"


@dataclass(frozen=True)
class NavEntry:
    """One entry of the console's menu. `endpoint` None: a page still to come, shown greyed so that
    readers know where it will be (programmes, emergency, relay, contents, reports)."""

    key: str
    label: Any  # a lazy string of the catalogue
    endpoint: str | None
    roles: frozenset[str] = permissions.ANYONE
    order: int = 100


# Pages still to come take their place here; the module that builds one sets its endpoint (and,
# if need be, roles) by calling add_nav with the same key, which replaces the placeholder.
NAV: dict[str, NavEntry] = {}


def add_nav(entry: NavEntry) -> None:
    NAV[entry.key] = entry


for _entry in (NavEntry("contents", _l("Contents"), None, order=40),
               NavEntry("programmes", _l("Programmes"), None, order=50),
               NavEntry("relay", _l("Live and relay"), None, order=60),
               NavEntry("emergency", _l("Emergency"), None, order=70),
               NavEntry("reports", _l("Reports"), None, order=80)):
    add_nav(_entry)


def runtime() -> Runtime:
    return flask.current_app.extensions["hub.runtime"]


def actor() -> Actor:
    return flask.g.actor


def wants_html(req: Request | None = None) -> bool:
    """A browser (or htmx) asking, rather than a program: only they are sent to the sign-in page."""
    req = req or flask.request
    return "text/html" in req.headers.get("Accept", "") or req.headers.get("HX-Request") == "true"


def safe_next(target: str | None, default: str) -> str:
    """Where to go after signing in or switching language: a path of this site, never another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def refuse(status: int, sentence: str, detail: str | None = None) -> flask.Response:
    """A refusal told in the reader's language (a page), or the API's JSON to a program."""
    if not wants_html():
        from hub.api.errors import json_error

        return json_error(status, detail or sentence)
    body = flask.render_template("error.html", status=status, sentence=sentence, detail=detail)
    return flask.make_response(body, status)


def _to_sign_in() -> flask.Response:
    req = flask.request
    target = flask.url_for("console.login", next=req.full_path.rstrip("?") if req.method == "GET" else None)
    if req.headers.get("HX-Request") == "true":  # htmx follows this header, not a 302 it swallowed
        resp = flask.make_response("", 200)
        resp.headers["HX-Redirect"] = target
        return resp
    return flask.redirect(target)


def door(authenticate: Callable[[Request], Actor]) -> Callable[[], flask.Response | None]:
    """The check run before every console page (the API's before_request hands console requests to it)."""
    def check() -> flask.Response | None:
        req = flask.request
        if permissions.is_public(req.endpoint, req.method):
            return None
        try:
            who = authenticate(req)
        except Unauthenticated as exc:
            if wants_html():
                return _to_sign_in()
            from hub.api.errors import json_error

            return json_error(401, str(exc) or "sign in first", headers={"WWW-Authenticate": 'Bearer realm="hub"'})
        except Forbidden as exc:  # a form without the session's CSRF token
            return refuse(403, _("This form has expired or did not come from the console. Reload the page and "
                                 "try again."), str(exc))
        if not who.via == "session":
            return refuse(403, _("The console is used signed in from a browser; programs with an API token "
                                 "call the API under /api."))
        flask.g.actor = who
        allowed = permissions.allowed_roles(req.endpoint or "", req.method)
        if allowed is None or not who.has_any(allowed):
            roles = ", ".join(word(r) for r in permissions.ROLES if allowed and r in allowed)
            return refuse(403, _("Your account may not do this: it needs the role %(roles)s.", roles=roles or "—"))
        return None
    return check


def csrf_token() -> str:
    sid = flask.g.get("session_id")
    return accounts.csrf_token(flask.current_app.secret_key, sid) if sid else ""


def _menu() -> list[NavEntry]:
    who = flask.g.get("actor")
    if who is None:
        return []
    return sorted((e for e in NAV.values() if who.has_any(e.roles)), key=lambda e: (e.order, e.key))


def _page_context() -> dict[str, Any]:
    return {"me": flask.g.get("actor"), "menu": _menu(), "csrf_token": csrf_token(), "lang": chosen_language(),
            "languages": LANGUAGES, "word": word, "zone_label": zone_label()}


def _error_page(exc: HTTPException) -> Any:
    sentences = {404: _("There is nothing here, or it lies outside your areas."),
                 405: _("This page cannot be used that way."),
                 413: _("What you sent is too large.")}
    return refuse(exc.code or 500, sentences.get(exc.code or 0, _("The request could not be served.")),
                  exc.description)


def console_blueprint(name: str, import_name: str, **kwargs: Any) -> flask.Blueprint:
    """A page group's blueprint: the console's templates, menu and language in every page it renders,
    and its errors shown as pages."""
    bp = flask.Blueprint(name, import_name, template_folder=TEMPLATES, **kwargs)
    bp.context_processor(_page_context)
    bp.register_error_handler(HTTPException, _error_page)
    return bp


__all__ = ["NAV", "NavEntry", "PAGES_KEY", "actor", "add_nav", "console_blueprint", "csrf_token", "door", "refuse",
           "runtime", "safe_next", "wants_html"]
