"""Sending a command from the console: pick a selection (areas from the tree, groups, kinds, tags), a
verb with its parameters and a class, and send it through the same dispatch as the API. A refusal
is shown as a sentence in the reader's language; an accepted command opens its live progress page."""
from __future__ import annotations

from typing import Any

import flask
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import func, or_, select

from hub.access.permissions import ANYONE, COMMAND_SENDERS
from hub.capabilities import DEFAULT_PRIORITY, DEVICE_KINDS, PRIORITIES
from hub.console.common import NavEntry, actor, add_nav, console_blueprint, runtime
from hub.console.refusals import Refusal, from_dispatch, from_validation
from hub.console.scope import area_tree, command_reaches, devices_in, my_paths, path_condition
from hub.delivery.dispatch import DispatchError, issued_by, submit
from hub.schemas.command import VERB_PARAMS, CommandSchema
from hub.store.content_tables import ContentStatus
from hub.store.models import Area, Command, Content, Device, Group

bp = console_blueprint("console_commands", __name__)

RULES = {"command_list": {"GET": ANYONE},
         "new_command": {"GET": COMMAND_SENDERS, "POST": COMMAND_SENDERS},
         "verb_params": {"GET": COMMAND_SENDERS}}

add_nav(NavEntry("commands", _l("Commands"), "console_commands.command_list", order=30))
add_nav(NavEntry("send", _l("Send a command"), "console_commands.new_command", roles=COMMAND_SENDERS, order=31))

# The verbs the form offers, in the order an officer reaches for them; sync_schedule (a whole
# schedule in one command) belongs to the programmes pages.
FORM_VERBS = ("play", "stop", "set_volume", "led_show", "led_clear", "set_brightness", "power", "relay_start",
              "relay_stop")
INT_PARAMS = ("repeat", "volume", "level", "duration_s")
LISTED = 50
CONTENTS_OFFERED = 200


def _groups(s: Any) -> list[Group]:
    mine = my_paths(s)
    stmt = select(Group).order_by(Group.name, Group.id)
    if mine is not None:
        stmt = stmt.where(Group.area_code.in_(select(Area.code).where(path_condition(Area.path, mine))))
    return list(s.scalars(stmt))


def _contents(s: Any) -> list[Content]:
    """Published bulletins the reader may send: of its areas, and those of the areas above them."""
    mine = my_paths(s)
    stmt = (select(Content).where(or_(Content.status == ContentStatus.PUBLISHED, Content.status.is_(None)))
            .order_by(Content.created_at.desc()).limit(CONTENTS_OFFERED))
    if mine is not None:
        above = {code for p in mine for code in p.split("/") if code}
        stmt = stmt.where(or_(Content.area_code.is_(None), Content.area_code.in_(above),
                              Content.area_code.in_(select(Area.code).where(path_condition(Area.path, mine)))))
    return list(s.scalars(stmt))


def _form_context(s: Any, form: dict[str, Any], refusals: list[Refusal] | None = None) -> dict[str, Any]:
    counts = dict(s.execute(select(Device.area_code, func.count()).where(devices_in(my_paths(s)))
                            .group_by(Device.area_code)).all())
    return {"tree": area_tree(s, counts), "groups": _groups(s), "contents": _contents(s), "kinds": DEVICE_KINDS,
            "verbs": FORM_VERBS, "priorities": PRIORITIES, "form": form, "refusals": refusals or [],
            "tags": form.get("tags", "")}


def _posted() -> dict[str, Any]:
    """The form as sent, kept to show it again after a refusal."""
    f = flask.request.form
    return {"areas": f.getlist("areas"), "groups": f.getlist("groups"), "kinds": f.getlist("kinds"),
            "tags": f.get("tags", ""), "verb": f.get("verb", ""), "priority": f.get("priority", DEFAULT_PRIORITY),
            "content_id": f.get("content_id", ""),
            "params": {k[len("p_"):]: v for k, v in f.items() if k.startswith("p_") and v != ""}}


def command_body(form: dict[str, Any]) -> dict[str, Any]:
    """The API's command document from the form (CommandSchema checks it as it checks the API's)."""
    target: dict[str, Any] = {}
    for key in ("areas", "groups", "kinds"):
        if form[key]:
            target[key] = form[key]
    tags = [t.strip() for t in form["tags"].split(",") if t.strip()]
    if tags:
        target["tags"] = tags
    params: dict[str, Any] = {}
    schema = VERB_PARAMS.get(form["verb"])
    fields = schema._declared_fields if schema is not None else {}
    for key, value in form["params"].items():
        if key not in fields:  # a field of the verb shown before (the form swaps them): not this verb's
            continue
        if key in INT_PARAMS:
            try:
                params[key] = int(value)
            except ValueError:
                params[key] = value  # the schema refuses it, naming the field
        elif key == "on":
            params[key] = value == "on"
        else:
            params[key] = value
    body: dict[str, Any] = {"verb": form["verb"], "params": params, "target": target,
                            "priority": form["priority"] or DEFAULT_PRIORITY}
    if form["content_id"] and form["verb"] in ("play", "led_show", "relay_start"):
        body["content_id"] = form["content_id"]
    return body


@bp.route("/console/commands/new", methods=["GET", "POST"])
def new_command() -> Any:
    if flask.request.method == "GET":
        form = {"areas": flask.request.args.getlist("area"), "groups": [], "kinds": [], "tags": "",
                "verb": flask.request.args.get("verb", FORM_VERBS[0]), "priority": DEFAULT_PRIORITY,
                "content_id": "", "params": {}}
        with runtime().db.session() as s:
            return flask.render_template("command_new.html", **_form_context(s, form))
    form = _posted()
    try:
        data = CommandSchema().load(command_body(form))
        sub = submit(runtime(), actor(), data)
    except ValidationError as err:
        refusals = from_validation(err)
    except DispatchError as exc:
        refusals = [from_dispatch(exc)]
    else:
        return flask.redirect(flask.url_for("console_progress.progress", command_id=sub.command.id))
    with runtime().db.session() as s:
        body = flask.render_template("command_new.html", **_form_context(s, form, refusals))
    return flask.make_response(body, 422)


@bp.get("/console/commands/params")
def verb_params() -> Any:
    """The parameter fields of one verb (htmx swaps them in when the verb changes)."""
    verb = flask.request.args.get("verb", "")
    if verb not in VERB_PARAMS:
        verb = FORM_VERBS[0]
    with runtime().db.session() as s:
        return flask.render_template("_verb_params.html", verb=verb, params={}, contents=_contents(s), content_id="")


@bp.get("/console/commands")
def command_list() -> Any:
    """Recent commands the reader issued or that reach its areas, newest first."""
    with runtime().db.session() as s:
        stmt = (select(Command).where(or_(issued_by(s, actor()), command_reaches(my_paths(s))))
                .order_by(Command.created_at.desc(), Command.id).limit(LISTED))
        return flask.render_template("commands.html", commands=list(s.scalars(stmt)))


__all__ = ["bp", "command_body"]
