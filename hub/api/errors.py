"""Every error the API answers is JSON: {"code", "status", "message", "errors"}, where `errors`
maps a location (json, query, path) to the fields at fault and their messages."""
from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import flask
from flask_smorest import Api
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from hub.access.accounts import AccountError
from hub.fleet.areas import AreaError
from hub.access.actors import Forbidden, Unauthenticated
from hub.content.workflow import WorkflowError
from hub.store.db import SchemaError
from hub.delivery.dispatch import DispatchError
from hub.fleet.registry import RegistryError
from hub.fleet.targeting import TargetError

log = logging.getLogger("hub.api")

INVALID_JSON = "request body is not valid JSON"


def _stringify_keys(node: Any) -> Any:
    """marshmallow keys list items by int; JSON (sorted) wants every key a string."""
    if isinstance(node, dict):
        return {str(k): _stringify_keys(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_stringify_keys(v) for v in node]
    return node


def _flatten(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict):
        out: list[str] = []
        for k, v in node.items():
            out.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(node, (list, tuple)):
        if all(isinstance(v, str) for v in node):
            return [f"{prefix}: {'; '.join(node)}" if prefix else "; ".join(node)]
        return [m for i, v in enumerate(node) for m in _flatten(v, f"{prefix}.{i}" if prefix else str(i))]
    return [f"{prefix}: {node}" if prefix else str(node)]


def summarize(errors: dict[str, Any], limit: int = 600) -> str:
    """`json.params.level: Must be ...; json.target: ...` — the fields at fault, in one line."""
    text = "; ".join(_flatten(errors))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def payload(code: int, message: str, errors: dict[str, Any] | None = None,
            rule: str | None = None) -> dict[str, Any]:
    try:
        status = HTTPStatus(code).phrase
    except ValueError:
        status = "Error"
    out = {"code": code, "status": status, "message": message, "errors": _stringify_keys(errors or {})}
    if rule is not None:  # the editorial or sending rule refused, for clients to act on
        out["rule"] = rule
    return out


def json_error(code: int, message: str, errors: dict[str, Any] | None = None,
               headers: dict[str, str] | None = None, rule: str | None = None) -> flask.Response:
    resp = flask.jsonify(payload(code, message, errors, rule))
    resp.status_code = code
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def field_error(code: int, message: str, field: str | None, location: str = "json",
                rule: str | None = None) -> flask.Response:
    return json_error(code, message, {location: {field: [message]}} if field else {}, rule=rule)


# A workflow refusal's HTTP status and the request field at fault, by rule: the wrong order or a
# stale edit conflicts with the content's state (409); role and area are rights (403); the rest is
# a request to correct (422).
RULE_STATUS = {"order": 409, "stale": 409, "role": 403, "area": 403, "four_eyes": 403, "reason": 422,
               "area_required": 422, "unknown_area": 422, "invalid": 422, "action": 404}
RULE_FIELD = {"reason": "reason", "area_required": "area_code", "unknown_area": "area_code", "stale": "version"}


class HubApi(Api):
    """flask-smorest's Api whose HTTP errors always carry a message and an errors mapping."""

    def handle_http_exception(self, error: HTTPException) -> flask.Response:  # type: ignore[override]
        data = getattr(error, "data", None) or {}
        errors = data.get("errors") or data.get("messages") or {}
        code = error.code or 500
        message = data.get("message")
        if not message:
            if code == 400 and errors == {"json": ["Invalid JSON body."]}:
                message, errors = INVALID_JSON, {"json": {"_body": [INVALID_JSON]}}
            elif errors == {"json": {"_schema": ["Invalid input type."]}}:
                message = "request body must be a JSON object"
                errors = {"json": {"_schema": [message]}}
            elif errors:
                message = f"invalid request: {summarize(errors)}"
            elif code == 500:
                message = "internal error; it has been logged"
            elif code == 404 and not getattr(error, "data", None):
                message = f"no such endpoint: {flask.request.method} {flask.request.path}"
            else:
                message = error.description or error.name
        headers = dict(data.get("headers") or {})
        for k, v in error.get_headers():
            if k.lower() != "content-type":
                headers.setdefault(k, v)
        return json_error(code, message, errors, headers)


def register(app: flask.Flask) -> None:
    """Map the core's exceptions to JSON answers that name the field at fault."""

    @app.errorhandler(DispatchError)
    def _dispatch(exc: DispatchError) -> flask.Response:
        return field_error(exc.status, exc.message, exc.field, rule=exc.rule)

    @app.errorhandler(WorkflowError)
    def _workflow(exc: WorkflowError) -> flask.Response:
        return field_error(RULE_STATUS.get(exc.rule, 422), str(exc), RULE_FIELD.get(exc.rule), rule=exc.rule)

    @app.errorhandler(RegistryError)
    def _registry(exc: RegistryError) -> flask.Response:
        return field_error(exc.status, exc.message, exc.field)

    @app.errorhandler(TargetError)
    def _target(exc: TargetError) -> flask.Response:
        return field_error(422, exc.message, exc.field)

    @app.errorhandler(AreaError)
    def _area(exc: AreaError) -> flask.Response:
        return json_error(422, str(exc))

    @app.errorhandler(Forbidden)
    def _forbidden(exc: Forbidden) -> flask.Response:
        return json_error(403, str(exc) or "forbidden")

    @app.errorhandler(Unauthenticated)
    def _unauthenticated(exc: Unauthenticated) -> flask.Response:
        return json_error(401, str(exc) or "sign in first", headers={"WWW-Authenticate": 'Bearer realm="hub"'})

    @app.errorhandler(AccountError)
    def _account(exc: AccountError) -> flask.Response:
        return field_error(exc.status, exc.message, exc.field)

    @app.errorhandler(IntegrityError)
    def _integrity(exc: IntegrityError) -> flask.Response:
        log.warning("integrity error on %s %s: %s", flask.request.method, flask.request.path, exc.orig)
        return json_error(409, "conflicts with data already stored (a duplicate id or address?)")

    @app.errorhandler(OperationalError)
    def _db_down(exc: OperationalError) -> flask.Response:
        log.error("database error on %s %s: %s", flask.request.method, flask.request.path, exc.orig)
        return json_error(503, "database unavailable, try again later")

    @app.errorhandler(SchemaError)
    def _schema(exc: SchemaError) -> flask.Response:
        log.error("%s", exc)
        return json_error(503, "database is not initialised for this hub version")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> flask.Response:
        if isinstance(exc, HTTPException):  # not reached (HubApi handles them), kept for safety
            return app.extensions["hub.api"].handle_http_exception(exc)
        log.exception("unhandled error on %s %s", flask.request.method, flask.request.path)
        return json_error(500, "internal error; it has been logged")
