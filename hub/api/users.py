"""Accounts and API tokens, for administrators, each within their own areas: an administrator
sees and changes only accounts all of whose areas lie in theirs, and gives only areas of theirs."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from hub.access import accounts
from hub.api.account_schemas import (PasswordOutSchema, PasswordResetSchema, TokenCreatedSchema, TokenCreateSchema,
                                     TokenOutSchema, UserCreatedSchema, UserCreateSchema, UserOutSchema,
                                     UserUpdateSchema)
from hub.api.common import (ROW_ID_MAX, HubBlueprint, QueryArgs, actor, fail, not_found, page_of, runtime, scope,
                             taken)
from hub.access.login_throttle import LoginThrottle, lift_lockout
from hub.store.models import ApiToken, User
from hub.access.permissions import ROLES
from hub.access.permissions import ADMINISTRATORS
from hub.hookspecs import hookimpl

blp = HubBlueprint("users", __name__, url_prefix="/api",
                   description="Accounts (tài khoản) with roles and areas, and API tokens for machines. "
                               "Administrators only, within their areas. Passwords and tokens are answered "
                               "once, when made, and stored only as hashes.")

# Who may call each view (hook register_blueprints; hub.access.permissions refuses the rest).
RULES = {"Users": {"GET": ADMINISTRATORS, "POST": ADMINISTRATORS},
         "UserByName": {"GET": ADMINISTRATORS, "PATCH": ADMINISTRATORS, "DELETE": ADMINISTRATORS},
         "UserPassword": {"POST": ADMINISTRATORS},
         "UserLockout": {"GET": ADMINISTRATORS, "DELETE": ADMINISTRATORS},
         "Tokens": {"GET": ADMINISTRATORS, "POST": ADMINISTRATORS},
         "TokenById": {"GET": ADMINISTRATORS, "DELETE": ADMINISTRATORS}}


class UserQuery(QueryArgs):
    role = ma.fields.Str(validate=ma.validate.OneOf(ROLES))
    disabled = ma.fields.Bool()
    q = ma.fields.Str(validate=ma.validate.Length(min=1, max=100), metadata={"description": "Part of the name"})


class TokenQuery(QueryArgs):
    user = ma.fields.Str()
    active = ma.fields.Bool(metadata={"description": "true: only tokens not revoked"})


def _visible_user(session: Session, name: str, field: str | None = None) -> User:
    """The user if the caller may manage it; 404 otherwise (an account elsewhere is not shown)."""
    user = accounts.get_user(session, name)
    if user is None or not accounts.may_manage(session, scope(session), user):
        if field is not None:
            fail(404, f"unknown user {name}", field=field)
        not_found("user", name)
    return user


def _visible_token(session: Session, token_id: int) -> ApiToken:
    # An id beyond 64 bits cannot exist, and SQLite's driver raises OverflowError on it (a 500).
    token = session.get(ApiToken, token_id) if 0 <= token_id <= ROW_ID_MAX else None
    if token is None or not accounts.may_manage(session, scope(session), token.user):
        not_found("token", str(token_id))
    return token


@blp.route("/users")
class Users(MethodView):
    @blp.arguments(UserQuery, location="query", as_kwargs=True)
    @blp.response(200, UserOutSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters, role: str | None = None,
            disabled: bool | None = None, q: str | None = None) -> list[dict[str, Any]]:
        """List accounts

        Danh sách tài khoản whose every area lies in the caller's.
        """
        with runtime().db.session() as s:
            stmt = select(User).order_by(User.name)
            cond = accounts.manageable(scope(s))
            if cond is not None:
                stmt = stmt.where(cond)
            if disabled is not None:
                stmt = stmt.where(User.disabled.is_(disabled))
            if q is not None:
                stmt = stmt.where(User.name.contains(q, autoescape=True))
            if role is not None:  # roles are a JSON list of known words: its text holds "role" quoted
                stmt = stmt.where(cast(User.roles, String).contains(f'"{role}"'))
            return [accounts.user_dict(u) for u in page_of(s, stmt, pagination_parameters)]

    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserCreatedSchema)
    @blp.fails(403, 409)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create an account

        Tạo tài khoản. Its areas must lie in the caller's. Without `password`, one is generated and
        answered this once.
        """
        with runtime().db.session() as s:
            existing = accounts.get_user(s, data["name"])
            if existing is not None:
                taken(s, "user", data["name"], accounts.may_manage(s, scope(s), existing), field="name")
            user, generated = accounts.create_user(s, actor(), data["name"], data["roles"], data["areas"],
                                                   password=data.get("password"), login=data["login"],
                                                   full_name=data["full_name"])
            return {**accounts.user_dict(user), "password": generated}


@blp.route("/users/<string:name>")
class UserByName(MethodView):
    @blp.response(200, UserOutSchema)
    @blp.fails(404)
    def get(self, name: str) -> dict[str, Any]:
        """Show an account"""
        with runtime().db.session() as s:
            return accounts.user_dict(_visible_user(s, name))

    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserOutSchema)
    @blp.fails(403, 404, 409)
    def patch(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        """Change an account

        Sửa tài khoản: roles, areas (inside the caller's), full name, or disable it (its sessions end
        and its tokens stop working at once).
        """
        with runtime().db.session() as s:
            user = accounts.update_user(s, actor(), _visible_user(s, name), roles=data.get("roles"),
                                        areas=data.get("areas"), disabled=data.get("disabled"),
                                        full_name=data.get("full_name"))
            return accounts.user_dict(user)

    @blp.response(204)
    @blp.fails(404, 409)
    def delete(self, name: str) -> None:
        """Delete an account

        Xoá tài khoản, with its sessions and tokens. The audit log keeps what it did.
        """
        with runtime().db.session() as s:
            accounts.delete_user(s, actor(), _visible_user(s, name))


@blp.route("/users/<string:name>/password")
class UserPassword(MethodView):
    @blp.arguments(PasswordResetSchema)
    @blp.response(200, PasswordOutSchema)
    @blp.fails(404)
    def post(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        """Reset an account's password

        Đặt lại mật khẩu. Without `password`, one is generated and answered this once. The account's
        sessions end.
        """
        with runtime().db.session() as s:
            return {"password": accounts.set_password(s, actor(), _visible_user(s, name), data.get("password"))}


class LockoutSchema(ma.Schema):
    locked = ma.fields.Bool(required=True)
    retry_after = ma.fields.Int(allow_none=True, metadata={"description": "Seconds until the lock ends by itself"})
    failures = ma.fields.Int(required=True, metadata={"description": "Consecutive failed sign-ins counted"})


@blp.route("/users/<string:name>/lockout")
class UserLockout(MethodView):
    @blp.response(200, LockoutSchema)
    @blp.fails(404)
    def get(self, name: str) -> dict[str, Any]:
        """Show an account's sign-in lock

        Whether too many failed sign-ins locked the account, and for how long yet.
        """
        with runtime().db.session() as s:
            _visible_user(s, name)
        return LoginThrottle(runtime().redis, runtime().settings).lockout(name)

    @blp.response(200, LockoutSchema)
    @blp.fails(404)
    def delete(self, name: str) -> dict[str, Any]:
        """Lift an account's sign-in lock

        Mở khoá: the account may sign in again at once and its failed sign-ins are forgotten.
        Audited. Answers the lock as it was.
        """
        with runtime().db.session() as s:
            user = _visible_user(s, name)
            return lift_lockout(s, LoginThrottle(runtime().redis, runtime().settings), actor(), name,
                                user.area_codes)


@blp.route("/tokens")
class Tokens(MethodView):
    @blp.arguments(TokenQuery, location="query", as_kwargs=True)
    @blp.response(200, TokenOutSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters, user: str | None = None,
            active: bool | None = None) -> list[dict[str, Any]]:
        """List API tokens

        Tokens of the accounts the caller manages, newest first. Never the tokens themselves.
        """
        with runtime().db.session() as s:
            stmt = select(ApiToken).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id.desc())
            cond = accounts.manageable(scope(s))
            if cond is not None:
                stmt = stmt.where(cond)
            if user is not None:
                stmt = stmt.where(User.name == user)
            if active is not None:
                stmt = stmt.where(ApiToken.revoked_at.is_(None) if active else ApiToken.revoked_at.is_not(None))
            return [accounts.token_dict(t) for t in page_of(s, stmt, pagination_parameters)]

    @blp.arguments(TokenCreateSchema)
    @blp.response(201, TokenCreatedSchema)
    @blp.fails(403, 404)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create an API token

        Tạo mã truy cập for an account, optionally narrowed to some of its areas and to reading.
        The token is answered this once; send it as `Authorization: Bearer <token>`.
        """
        with runtime().db.session() as s:
            owner = _visible_user(s, data["user"], field="user")
            token, raw = accounts.create_token(s, actor(), owner, data["name"], areas=data.get("areas"),
                                               read_only=data["read_only"])
            return {**accounts.token_dict(token), "token": raw}


@blp.route("/tokens/<int:token_id>")
class TokenById(MethodView):
    @blp.response(200, TokenOutSchema)
    @blp.fails(404)
    def get(self, token_id: int) -> dict[str, Any]:
        """Show an API token"""
        with runtime().db.session() as s:
            return accounts.token_dict(_visible_token(s, token_id))

    @blp.response(204)
    @blp.fails(404)
    def delete(self, token_id: int) -> None:
        """Revoke an API token

        Thu hồi. It stops working at once; the row stays, for the record.
        """
        with runtime().db.session() as s:
            accounts.revoke_token(s, actor(), _visible_token(s, token_id))


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
