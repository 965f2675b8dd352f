"""What every blueprint shares: the runtime and actor of the request, the area scope, JSON errors
that name the field, pagination of SQL queries and the base schema of list filters."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any, NoReturn

import flask
import marshmallow as ma
from flask_smorest import Blueprint
from flask_smorest.utils import resolve_schema_instance
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import ColumnElement, Select, false, func, select
from sqlalchemy.orm import Session

from hub.access import audit as audit_log
from hub.fleet.areas import AreaError, under_any
from hub.access.actors import Actor, Forbidden
from hub.api.times import localise
from hub.store.models import Area
from hub.runtime import Runtime

RUNTIME_KEY = "hub.runtime"
PAGE_KEYS = ("page", "page_size")


class HubBlueprint(Blueprint):
    """A flask-smorest blueprint whose lists page by 100 items, at most 1000."""

    DEFAULT_PAGINATION_PARAMETERS = {"page": 1, "page_size": 100, "max_page_size": 1000}

    def arguments(self, schema: Any, *, location: str = "json", **kwargs: Any) -> Any:
        """As flask-smorest's, but a query string with an unknown parameter is refused (422)."""
        if location in ("query", "querystring"):
            kwargs.setdefault("unknown", ma.RAISE)
        return super().arguments(schema, location=location, **kwargs)

    def response(self, status_code: Any, schema: Any = None, **kwargs: Any) -> Any:
        """As flask-smorest's, but every datetime of the answer is rendered in the province's time
        zone with its offset (hub.api.times): the one place API answers serialise times."""
        if schema is not None:
            schema = localise(resolve_schema_instance(schema))
        return super().response(status_code, schema, **kwargs)

    def fails(self, *codes: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Document error answers (the JSON error schema) an endpoint may give."""
        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            for code in codes:
                func = self.alt_response(code, response=HTTPStatus(code).name)(func)
            return func
        return decorator


def runtime() -> Runtime:
    """The Runtime of the app serving this request."""
    return flask.current_app.extensions[RUNTIME_KEY]


def actor() -> Actor:
    """The Actor the authenticator found for this request."""
    return flask.g.actor


def fail(status: int, message: str, field: str | None = None, location: str = "json") -> NoReturn:
    """Abort with the hub's JSON error; `field` (dotted for nested ones) goes under errors.<location>."""
    from flask_smorest import abort

    errors: dict[str, Any] = {location: {field: [message]}} if field else {}
    abort(status, message=message, errors=errors)


def not_found(what: str, ident: str) -> NoReturn:
    fail(404, f"unknown {what} {ident}", field="id", location="path")


# -- area scope -----------------------------------------------------------------------------------
def scope(session: Session) -> tuple[str, ...] | None:
    """Paths of the actor's subtrees (None: every area), computed once per request."""
    cache = flask.g.get("_hub_scope", ...)
    if cache is not ...:
        return cache
    who = actor()
    try:
        paths = who.area_paths(session)
    except AreaError as exc:
        raise Forbidden(f"the areas of {who.name} are not known to this hub: {exc}") from None
    flask.g._hub_scope = paths
    return paths


def in_scope(column: Any, paths: Iterable[str] | None) -> ColumnElement[bool] | None:
    """SQL condition: an Area.path column lies in one of `paths`; None when unrestricted."""
    if paths is None:
        return None
    paths = list(paths)
    return under_any(column, paths) if paths else false()


def path_allowed(path: str, paths: tuple[str, ...] | None) -> bool:
    return paths is None or any(path.startswith(p) for p in paths)


def taken(session: Session, what: str, ident: str, visible: bool, field: str = "id") -> NoReturn:
    """409 for an id already in use. A restricted caller colliding with something outside its
    areas learns only that the id is taken: not what holds it, nor where."""
    if visible or scope(session) is None:
        fail(409, f"{what} {ident} already exists", field=field)
    fail(409, f"{ident} is already in use; choose another", field=field)


def area_path(session: Session, code: str) -> str | None:
    return session.scalar(select(Area.path).where(Area.code == code))


def require(session: Session, checks: Iterable[tuple[str, str]], field: str) -> None:
    """Refuse (403, naming `field`) unless every (label, path) lies in the actor's areas."""
    try:
        actor().check_paths(session, checks)
    except Forbidden as exc:
        fail(403, str(exc), field=field)
    except AreaError as exc:
        fail(403, f"the areas of {actor().name} are not known to this hub: {exc}", field=field)


# -- lists ----------------------------------------------------------------------------------------
def page_of(session: Session, stmt: Select[Any], pp: PaginationParameters) -> list[Any]:
    """One page of `stmt`; sets the item count flask-smorest puts in the X-Pagination header."""
    pp.item_count = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    if pp.first_item >= pp.item_count:  # past the end (also keeps a huge page number out of SQL)
        return []
    return list(session.scalars(stmt.offset(pp.first_item).limit(pp.page_size)).unique())


# The largest integer the database stores (SQLite's INTEGER and PostgreSQL's BIGINT: signed 64
# bits). A row id given beyond it cannot name a row, and binding it would fail as a 500.
ROW_ID_MAX = 2 ** 63 - 1


def row_id_field(**kwargs: Any) -> ma.fields.Int:
    """An integer that names a row: refused (422, naming the parameter) beyond what a row id can be."""
    return ma.fields.Int(validate=ma.validate.Range(min=0, max=ROW_ID_MAX), **kwargs)


class QueryArgs(ma.Schema):
    """Base of list filters: unknown query parameters are refused, not silently ignored,
    except the page/page_size that the pagination decorator reads."""

    class Meta:
        unknown = ma.RAISE

    @ma.pre_load
    def _drop_paging(self, data: Any, **_: Any) -> Any:
        if hasattr(data, "keys"):
            return {k: data[k] for k in data.keys() if k not in PAGE_KEYS}
        return data


def audit(session: Session, action: str, object_type: str, object_id: str | None,
          detail: dict[str, Any] | None = None, areas: Iterable[str | None] | None = None) -> None:
    """Record who changed what, in the transaction of the change (the dispatcher records
    commands itself). `areas`: the area codes the change touched (default: the actor's)."""
    codes = None if areas is None else [a for a in areas if a]
    audit_log.record(session, actor(), action, object_type, object_id, detail, areas=codes)
