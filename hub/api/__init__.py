"""The hub's HTTP API: flask-smorest blueprints, an OpenAPI 3 document at /api/openapi.json and
Swagger UI at /api/docs.

Authorization happens in one place: a `before_request` hook asks the authenticator for the
Actor of the request and keeps it in `flask.g.actor`, then checks the endpoint against the role
table (hub.access.permissions, assembled from the rules each blueprint brings when it registers
through the register_blueprints hook, the hub's own like a plugin's); every view filters reads by the actor's area subtrees and checks
writes against them (see hub.access.actors).

The web console (hub.console) is mounted on the same app: its pages are in the same permission table,
and the before_request hook hands them to the console's door, which sends a browser without a session
to the sign-in page instead of answering JSON.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable

import flask
from flask import Flask, Request

import hub
from hub.access import permissions
from hub.api import errors
from hub.api.common import RUNTIME_KEY
from hub.api.times import HubJSONProvider
from hub.access.actors import Actor, Forbidden, Unauthenticated
from hub.runtime import Runtime, get_runtime
from hub.access.secret_key import session_secret
from hub.text import SURROGATE_MESSAGE, surrogate_path

log = logging.getLogger("hub.api")

API_TITLE = "Hub — hệ thống thông tin nguồn"
SWAGGER_UI_CDN = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@4.15.5/"
SWAGGER_ASSETS_PREFIX = "/api/docs/assets"
MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_JSON_DEPTH = 32

API_DESCRIPTION = """\
Integration hub for the grassroots information system: IP loudspeaker clusters and LED boards
of many vendors, driven through vendor plugins.

Sign in with `POST /api/auth/login` (a session cookie; every POST, PUT, PATCH and DELETE then
carries the answered `csrf_token` in an `X-CSRF-Token` header), or send an API token as
`Authorization: Bearer <token>`. What an account may do depends on its roles; what it may touch,
on its areas.

Every error is JSON: `{"code", "status", "message", "errors"}`, where `errors` maps the request
location (`json`, `query`, `path`) to the fields at fault and their messages. Lists are paged
with `page` and `page_size` (at most 1000); the `X-Pagination` header carries the totals.
"""

_BODY_METHODS = {"POST", "PUT", "PATCH"}
CONSOLE_PAGES_KEY = "hub.console.pages"  # set by hub.console.mount: blueprint → the door of its pages


def _swagger_assets(app: Flask) -> str:
    """Serve Swagger UI's scripts from the swagger-ui-bundle package when it is installed (works
    offline); otherwise point the page at a CDN."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return SWAGGER_UI_CDN
    assets = flask.Blueprint("hub_swagger_assets", __name__, static_folder=swagger_ui_path,
                             static_url_path=SWAGGER_ASSETS_PREFIX)
    app.register_blueprint(assets)
    return SWAGGER_ASSETS_PREFIX + "/"


def _takes_files() -> bool:
    """Whether this request's view takes a multipart upload (a MethodView with `takes_files`)."""
    view = flask.current_app.view_functions.get(flask.request.endpoint or "")
    return bool(getattr(getattr(view, "view_class", None), "takes_files", False))


def _check_body() -> flask.Response | None:
    """Refuse a body that is not JSON before any view sees it (a view taking files excepted: its
    body may be as large as media_max_upload_bytes, and the view checks it)."""
    req = flask.request
    if req.method not in _BODY_METHODS:
        return None
    if _takes_files():
        from hub.api.common import runtime

        req.max_content_length = runtime().settings.media_max_upload_bytes + 64 * 1024  # the form around the file
        if not req.mimetype.startswith("multipart/form-data"):
            return errors.field_error(415, f"send a multipart/form-data upload, not {req.mimetype or 'no body type'}",
                                      "_body")
        return None
    body = req.get_data(cache=True)
    if req.mimetype and not req.is_json:
        return errors.field_error(415, f"request body must be JSON (Content-Type: application/json), "
                                       f"not {req.mimetype}", "_body")
    if not body.strip():
        return None
    if not req.mimetype:
        return errors.field_error(415, "request body must be JSON: set Content-Type: application/json", "_body")
    try:
        doc = json.loads(body, parse_constant=_no_constant)
    except UnicodeDecodeError:
        return errors.field_error(400, f"{errors.INVALID_JSON}: not UTF-8", "_body")
    except RecursionError:
        return errors.field_error(400, f"{errors.INVALID_JSON}: nested too deeply", "_body")
    except ValueError as exc:
        return errors.field_error(400, f"{errors.INVALID_JSON}: {exc}", "_body")
    if _depth(doc) > MAX_JSON_DEPTH:
        return errors.field_error(400, f"request body is nested deeper than {MAX_JSON_DEPTH} levels", "_body")
    # Every text field, in one place: a lone surrogate stored once makes every answer holding it
    # fail to encode (a 500 for everyone who lists it), so none gets past here (hub.text).
    where = surrogate_path(doc)
    if where is not None:
        return errors.field_error(422, f"{where or 'request body'}: {SURROGATE_MESSAGE}", where or "_body")
    return None


def _check_url_text() -> flask.Response | None:
    """The query string and the path hold no unpaired surrogate either (422 naming the parameter)."""
    req = flask.request
    for location, values in (("query", list(req.args.items(multi=True))),
                             ("path", list((req.view_args or {}).items()))):
        for key, value in values:
            where = surrogate_path({key: value})
            if where is not None:
                return errors.field_error(422, f"{where}: {SURROGATE_MESSAGE}", where, location)
    return None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _depth(doc: object) -> int:
    """Nesting depth of a parsed JSON document, without recursion."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in node if isinstance(v, (dict, list)))
    return deepest


def _check_permission(actor: Actor) -> flask.Response | None:
    """403 unless the actor's roles (and token) allow this endpoint and method."""
    req = flask.request
    if req.endpoint is None:  # no such route: the 404/405 answer follows
        return None
    if actor.read_only and req.method not in permissions.SAFE_METHODS:
        return errors.json_error(403, f"this API token of {actor.name} is read-only")
    allowed = permissions.allowed_roles(req.endpoint, req.method)
    if allowed is None:
        log.error("no permission rule for %s %s (endpoint %s): refused", req.method, req.path, req.endpoint)
        return errors.json_error(403, f"{req.method} {req.path} has no permission rule; refused")
    if not actor.has_any(allowed):
        mine = ", ".join(sorted(actor.roles)) or "no role"
        return errors.json_error(403, f"{actor.name} ({mine}) may not {req.method} {req.path}: "
                                      f"needs {permissions.describe(allowed)}")
    return None


def _record_refusal(runtime: Runtime, actor: Actor, resp: flask.Response) -> None:
    """Audit a refused write (hub.access.audit_refusals: at most one entry a minute per actor and endpoint)."""
    from hub.access.audit_refusals import record_refusal

    req = flask.request
    body = resp.get_json(silent=True)
    message = body.get("message") if isinstance(body, dict) else None
    try:
        with runtime.db.session() as s:
            record_refusal(s, actor, req.endpoint or "?", req.method, req.path, str(message or ""))
    except Exception:  # the refusal stands either way; a broken audit shows in the log, not to the caller
        log.exception("could not audit the refusal of %s %s to %s", req.method, req.path, actor.name)


def create_app(rt: Runtime | None = None,
               authenticator: Callable[[Request], Actor] | None = None) -> Flask:
    """Build the API app for a runtime (default: the process runtime) and an authenticator
    (default: accounts — a session cookie with its CSRF token, or an API token; tests and the
    command line may pass hub.access.actors.local_admin)."""
    from hub.api import commands
    from hub.access.authenticate import AccountsAuthenticator
    from hub.console import mount as mount_console

    app = Flask("hub.api", static_folder=None)  # no /static route: nothing to serve, nothing to guard
    runtime = rt or get_runtime()
    app.extensions[RUNTIME_KEY] = runtime
    settings = runtime.settings
    if settings.trusted_proxies:  # the client's address, which sign-in throttling counts by
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]
    app.secret_key = session_secret(settings)
    authenticate = authenticator or AccountsAuthenticator(runtime, app.secret_key)
    app.config.update(
        SESSION_COOKIE_NAME="hub_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(settings.cookie_secure),
        PERMANENT_SESSION_LIFETIME=settings.session_lifetime_s,
    )
    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION=hub.__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=_swagger_assets(app),
        API_SPEC_OPTIONS={"info": {"description": API_DESCRIPTION},
                          "security": [{"bearerToken": []}, {"sessionCookie": []}]},
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    app.json = HubJSONProvider(app)  # Vietnamese stays readable; a datetime is local ISO 8601 (hub.api.times)

    api = errors.HubApi(app)
    app.extensions["hub.api"] = api
    api.spec.components.security_scheme("bearerToken", {"type": "http", "scheme": "bearer",
                                                        "description": "An API token (hub tokens create)"})
    api.spec.components.security_scheme("sessionCookie", {"type": "apiKey", "in": "cookie", "name": "hub_session",
                                                          "description": "From POST /api/auth/login"})
    errors.register(app)

    @app.before_request
    def _authorize() -> flask.Response | None:
        req = flask.request
        page_door = app.extensions.get(CONSOLE_PAGES_KEY, {}).get(req.blueprint or "")
        if page_door is not None:  # a console page: same table, but a browser is sent to sign in
            return page_door()
        if permissions.is_public(req.endpoint, req.method):
            return _check_body() if req.endpoint and req.endpoint.startswith("auth.") else None
        try:
            actor = authenticate(req)
        except Unauthenticated as exc:
            return errors.json_error(401, str(exc) or "sign in first",
                                     headers={"WWW-Authenticate": 'Bearer realm="hub"'})
        except Forbidden as exc:
            return errors.json_error(403, str(exc) or "forbidden")
        flask.g.actor = actor
        return _check_permission(actor) or _check_url_text() or _check_body()

    @app.after_request
    def _audit_refused_write(resp: flask.Response) -> flask.Response:
        req = flask.request
        actor = flask.g.get("actor")
        if resp.status_code == 403 and actor is not None and req.method not in permissions.SAFE_METHODS:
            _record_refusal(runtime, actor, resp)
        return resp

    _register_blueprints(app, api, runtime)
    commands.document_verb_params(api)
    mount_console(app, runtime, authenticate)
    return app


def _register_blueprints(app: Flask, api: errors.HubApi, runtime: Runtime) -> None:
    """Serve the blueprints registered through the register_blueprints hook (the hub's own first,
    as hub.plugins lists them) and add their rules to the permission table. One registered without
    rules, with malformed ones or under a name already taken is not served, and is reported."""
    plugins = runtime.plugins
    for reg in plugins.blueprints():
        blueprint = reg.item
        name = getattr(blueprint, "name", None)
        if not isinstance(blueprint, flask.Blueprint) or not name:
            plugins.report(f"plugin {reg.plugin} registered {blueprint!r}, not a flask Blueprint; not served")
            continue
        if name in app.blueprints:
            plugins.report(f"plugin {reg.plugin}: blueprint name {name} is already taken; not served")
            continue
        try:
            problem = permissions.declare(name, reg.rules)
        except permissions.RuleError as exc:
            plugins.report(f"plugin {reg.plugin}: {exc}")
            continue
        if problem:
            plugins.report(f"plugin {reg.plugin}: {problem}")
        api.register_blueprint(blueprint)
        for rule in app.url_map.iter_rules():  # fail closed, but say so at start-up rather than at the first call
            if rule.endpoint.startswith(f"{name}."):
                missing = sorted(m for m in rule.methods or () if m in permissions.HTTP_METHODS
                                 and not permissions.is_public(rule.endpoint, m)
                                 and permissions.allowed_roles(rule.endpoint, m) is None)
                if missing:
                    plugins.report(f"plugin {reg.plugin}: {', '.join(missing)} {rule.rule} ({rule.endpoint}) "
                                   f"has no permission rule and is refused")


__all__ = ["API_TITLE", "create_app"]
