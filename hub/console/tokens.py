"""One's own API tokens: make one (its secret shown this once), list them, revoke one.

Any signed-in account may make tokens for itself — a token never holds more than its account (its
roles, and areas narrowed to the account's); administrators manage others' through the API.
"""
from __future__ import annotations

from typing import Any

import flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from hub.access import accounts
from hub.access.accounts import AccountError
from hub.access.permissions import ANYONE
from hub.console.common import NavEntry, actor, add_nav, console_blueprint, runtime
from hub.store.models import ApiToken

bp = console_blueprint("console_tokens", __name__)

RULES = {"tokens": {"GET": ANYONE, "POST": ANYONE},
         "revoke": {"POST": ANYONE}}

add_nav(NavEntry("tokens", _l("My API tokens"), "console_tokens.tokens", order=90))


def _mine(session: Any) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == actor().user_id)
                                .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def _page(new: dict[str, Any] | None = None, error: str | None = None, status: int = 200) -> Any:
    with runtime().db.session() as s:
        rows = [accounts.token_dict(t) for t in _mine(s)]
        areas = sorted(accounts.get_user(s, actor().name).area_codes)
    body = flask.render_template("tokens.html", tokens=rows, new=new, error=error, my_areas=areas)
    return flask.make_response(body, status)


@bp.route("/console/tokens", methods=["GET", "POST"])
def tokens() -> Any:
    if flask.request.method == "GET":
        return _page()
    form = flask.request.form
    areas = [a for a in form.getlist("areas") if a] or None
    with runtime().db.session() as s:
        me = accounts.get_user(s, actor().name)
        try:
            token, raw = accounts.create_token(s, actor(), me, form.get("name", ""), areas=areas,
                                               read_only=form.get("read_only") == "on")
        except AccountError as exc:
            s.rollback()
            sentence = (_("Give the token a name of 1 to 100 characters: what will use it.") if exc.field == "name"
                        else _("A token may only cover areas of your own."))
            return _page(error=sentence, status=422)
        new = {**accounts.token_dict(token), "token": raw}
    return _page(new=new, status=201)


@bp.post("/console/tokens/<int:token_id>/revoke")
def revoke(token_id: int) -> Any:
    with runtime().db.session() as s:
        token = s.get(ApiToken, token_id) if 0 <= token_id < 2**63 else None
        if token is None or token.user_id != actor().user_id:
            flask.abort(404)
        accounts.revoke_token(s, actor(), token)
    return flask.redirect(flask.url_for("console_tokens.tokens"))


__all__ = ["bp"]
