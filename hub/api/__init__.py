"""The hub's HTTP API: flask-smorest blueprints, an OpenAPI 3 document at /api/openapi.json and
Swagger UI at /api/docs.

Authorization happens in one place: a `before_request` hook asks the authenticator for the
Actor of the request and keeps it in `flask.g.actor`; every view filters reads by the actor's
area subtrees and checks writes against them (see hub.auth).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable

import flask
from flask import Flask, Request

import hub
from hub.api import errors
from hub.api.common import RUNTIME_KEY
from hub.auth import Actor, Forbidden, local_admin
from hub.runtime import Runtime, get_runtime

log = logging.getLogger("hub.api")

API_TITLE = "Hub — hệ thống thông tin nguồn"
SWAGGER_UI_CDN = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@4.15.5/"
SWAGGER_ASSETS_PREFIX = "/api/docs/assets"
MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_JSON_DEPTH = 32

API_DESCRIPTION = """\
Integration hub for the grassroots information system: IP loudspeaker clusters and LED boards
of many vendors, driven through vendor plugins.

Every error is JSON: `{"code", "status", "message", "errors"}`, where `errors` maps the request
location (`json`, `query`, `path`) to the fields at fault and their messages. Lists are paged
with `page` and `page_size` (at most 1000); the `X-Pagination` header carries the totals.
"""

# Endpoints served without asking the authenticator: the API's own description.
_PUBLIC_BLUEPRINTS = {"api-docs", "hub_swagger_assets"}
_BODY_METHODS = {"POST", "PUT", "PATCH"}


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


def _check_body() -> flask.Response | None:
    """Refuse a body that is not JSON before any view sees it."""
    req = flask.request
    if req.method not in _BODY_METHODS:
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


def create_app(rt: Runtime | None = None,
               authenticator: Callable[[Request], Actor] | None = None) -> Flask:
    """Build the API app for a runtime (default: the process runtime) and an authenticator
    (default: everyone is the local administrator, see hub.auth)."""
    from hub.api import areas, commands, contents, devices, groups, health, plugins

    app = Flask("hub.api")
    app.extensions[RUNTIME_KEY] = rt or get_runtime()
    authenticate = authenticator or local_admin
    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION=hub.__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=_swagger_assets(app),
        API_SPEC_OPTIONS={"info": {"description": API_DESCRIPTION}},
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    app.json.ensure_ascii = False  # Vietnamese names stay readable  # type: ignore[attr-defined]

    api = errors.HubApi(app)
    app.extensions["hub.api"] = api
    errors.register(app)

    @app.before_request
    def _authorize() -> flask.Response | None:
        if flask.request.blueprint in _PUBLIC_BLUEPRINTS:
            return None
        try:
            flask.g.actor = authenticate(flask.request)
        except Forbidden as exc:
            return errors.json_error(403, str(exc) or "forbidden")
        return _check_body()

    for module in (areas, devices, groups, contents, commands, plugins, health):
        api.register_blueprint(module.blp)
    commands.document_verb_params(api)
    return app


__all__ = ["API_TITLE", "create_app"]
