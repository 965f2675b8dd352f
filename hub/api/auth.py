"""Signing in to the console: a session cookie plus a CSRF token for every unsafe request."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import flask
from flask.views import MethodView
from flask_smorest import abort

from hub.access import accounts, audit
from hub.api.common import HubBlueprint, actor, fail, runtime
from hub.api.account_schemas import LoginSchema, MeSchema, PasswordChangeSchema
from hub.access.authenticate import SESSION_KEY
from hub.access.login_throttle import LoginThrottle
from hub.access.sign_in import SignInRefused, admit, sign_in
from hub.access.passwords import verify_password
from hub.access.permissions import ANYONE, PUBLIC
from hub.hookspecs import hookimpl

blp = HubBlueprint("auth", __name__, url_prefix="/api/auth",
                   description="Sign in and out of the console. A signed-in browser sends the session cookie "
                               "by itself; every POST, PUT, PATCH and DELETE it makes must also carry the "
                               "CSRF token from sign-in in an `X-CSRF-Token` header. Machines use API "
                               "tokens (`Authorization: Bearer …`) instead.")

# Who may call each view (hook register_blueprints; hub.access.permissions refuses the rest).
RULES = {"Login": {"POST": PUBLIC},
         "Me": {"GET": ANYONE},
         "Logout": {"POST": ANYONE},
         "Password": {"POST": ANYONE}}


def _csrf(sid: str | None) -> str | None:
    return accounts.csrf_token(flask.current_app.secret_key, sid) if sid else None


def _me(user_dict: dict[str, Any], sid: str | None) -> dict[str, Any]:
    who = actor() if "actor" in flask.g else None
    return {"user": user_dict, "csrf_token": _csrf(sid), "via": who.via if who else "session",
            "read_only": bool(who and who.read_only),
            "areas": sorted(who.areas) if who and who.areas is not None else user_dict["areas"]}


def _throttle() -> LoginThrottle:
    rt = runtime()
    return LoginThrottle(rt.redis, rt.settings)


def _refuse(exc: SignInRefused, field: str) -> NoReturn:
    """The API's answer to a refused sign-in: 401, 429 with Retry-After, or 503."""
    if exc.status == 429:
        abort(429, message=exc.message, errors={"json": {field: [exc.message]}},
              headers={"Retry-After": str(exc.retry_after)})
    fail(exc.status, exc.message, field=field if exc.status != 503 else None)


@blp.route("/login")
class Login(MethodView):
    @blp.arguments(LoginSchema)
    @blp.response(200, MeSchema)
    @blp.fails(401, 429, 503)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Sign in

        Đăng nhập. Sets the session cookie (HttpOnly, SameSite=Lax, Secure when configured) and
        answers the CSRF token to send as `X-CSRF-Token` with every unsafe request. A failure
        answers 401 without saying whether the name exists. Too many failures lock the account
        for a while (an administrator can lift it) and refuse the address: 429 with Retry-After,
        the password unchecked. Successes are in the audit log, failures up to a number per period
        and beyond it counted in one summary entry per period.
        """
        try:
            done = sign_in(runtime(), data["name"], data["password"], flask.request.remote_addr)
        except SignInRefused as exc:
            _refuse(exc, "password" if exc.status == 401 else "name")
        sid, body = done.sid, done.user
        flask.session.clear()  # a new id at every sign-in: no session fixation
        flask.session[SESSION_KEY] = sid
        flask.session.permanent = True
        return _me(body, sid)


@blp.route("/logout")
class Logout(MethodView):
    @blp.response(204)
    def post(self) -> None:
        """Sign out

        Đăng xuất. Ends this session on the server (a copy of the cookie stops working too).
        """
        sid = flask.g.get("session_id")
        if sid is None:
            fail(400, "signing out ends a console session; an API token is revoked instead (DELETE /api/tokens/ID)",
                 field="Authorization", location="headers")
        with runtime().db.session() as s:
            accounts.close_session(s, sid)
            audit.record(s, actor(), "logout", "user", actor().name)
        flask.session.clear()


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, MeSchema)
    def get(self) -> dict[str, Any]:
        """Show who I am

        The signed-in account, its roles and the areas this request may touch (narrowed by the
        token, if one was used), and the CSRF token of the session.
        """
        who = actor()
        with runtime().db.session() as s:
            user = accounts.get_user(s, who.name) if who.user_id is not None else None
            body = accounts.user_dict(user) if user else {
                "id": None, "name": who.name, "full_name": "", "roles": sorted(who.roles),
                "areas": sorted(who.areas or ()), "disabled": False, "login": False, "created_at": None,
                "created_by": None, "password_changed_at": None, "last_login_at": None}
        return _me(body, flask.g.get("session_id"))


@blp.route("/password")
class Password(MethodView):
    @blp.arguments(PasswordChangeSchema)
    @blp.response(204)
    @blp.fails(401, 422, 429)
    def post(self, data: dict[str, Any]) -> None:
        """Change my password

        Đổi mật khẩu. Needs the current password; ends every other session of the account.
        """
        sid = flask.g.get("session_id")
        who = actor()
        if sid is None:
            fail(400, "a password is changed from a console session, not with an API token",
                 field="Authorization", location="headers")
        throttle = _throttle()
        try:
            attempt = admit(runtime(), throttle, who.name, flask.request.remote_addr)
        except SignInRefused as exc:
            _refuse(exc, "current_password")
        with runtime().db.session() as s:
            user = accounts.get_user(s, who.name)
            if user is None or not verify_password(data["current_password"], user.password_hash):
                throttle.failed(attempt)  # a stolen session must not guess the password unthrottled either
                fail(422, "the current password is wrong", field="current_password")
            throttle.succeeded(attempt)
            accounts.set_password(s, who, user, data["new_password"], keep_sid=sid, field="new_password")


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)


__all__ = ["blp"]
