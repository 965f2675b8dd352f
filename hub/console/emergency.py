"""The emergency button: Vietnamese text, areas from the reader's tree and an optional expiry; a
confirmation that spells out what the hub's own preview counts ("N loa/bảng ở M xã", by kind, and
who cannot receive it) before anything is sent; then firing through hub.broadcast.emergency (the
same one step as POST /api/emergency) and the live progress page of its speakers' command.

Every step is one form posted to /console/emergency, its `step` saying which: `preview` asks the
hub what firing would reach, `edit` goes back to the form, `fire` fires. The confirmation carries an
idempotency key made at preview, so a double click or a resent form fires once.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import func, select

from hub.broadcast import emergency
from hub.console.common import NavEntry, actor, add_nav, console_blueprint, refuse, runtime
from hub.console.i18n import province_zone, word
from hub.console.refusals import Refusal, from_dispatch, from_validation
from hub.console.scope import area_tree, devices_in, my_paths, visible_command
from hub.content.workflow import EMERGENCY_ISSUERS, WorkflowError
from hub.delivery.dispatch import DispatchError
from hub.schemas.emergency import EmergencySchema
from hub.store.models import Device

bp = console_blueprint("console_emergency", __name__)

RULES = {"emergency_form": {"GET": EMERGENCY_ISSUERS, "POST": EMERGENCY_ISSUERS},
         "stop_emergency": {"POST": EMERGENCY_ISSUERS}}

add_nav(NavEntry("emergency", _l("Emergency"), "console_emergency.emergency_form", roles=EMERGENCY_ISSUERS,
                 order=70))

LOCAL_INPUT = "%Y-%m-%dT%H:%M"  # what <input type=datetime-local> sends, in the province's time


def _posted() -> dict[str, Any]:
    f = flask.request.form
    return {"text": f.get("text", "").strip(), "areas": f.getlist("areas"), "expires": f.get("expires", ""),
            "key": f.get("idempotency_key", "") or uuid.uuid4().hex}


def _request_body(form: dict[str, Any]) -> dict[str, Any]:
    """The API's emergency document from the form (EmergencySchema checks it as the API's does)."""
    body: dict[str, Any] = {"text": form["text"], "target": {"areas": form["areas"]} if form["areas"] else {},
                            "idempotency_key": form["key"]}
    if not form["areas"]:
        body.pop("target")
    if form["expires"]:
        try:
            local = datetime.strptime(form["expires"], LOCAL_INPUT).replace(tzinfo=province_zone())
        except ValueError:
            raise DispatchError("expires_at", f"{form['expires']!r} is not a date and time") from None
        body["expires_at"] = local.isoformat()
    return body


def _refusals(exc: Exception) -> list[Refusal]:
    """A refusal of the emergency as sentences in the reader's language."""
    if isinstance(exc, ValidationError):
        return from_validation(exc)
    if isinstance(exc, WorkflowError):
        return [Refusal(_("Your account may not fire an emergency: it needs the operator or administrator role."),
                        str(exc))]
    assert isinstance(exc, DispatchError)
    if exc.field == "text":
        return [Refusal(_("Write the words of the emergency: they are spoken on the loudspeakers and shown on "
                          "the boards (a board shows no line breaks or control characters)."), str(exc))]
    if exc.field == "target" and exc.status != 403:
        return [Refusal(_("Choose at least one area that has loudspeakers or boards."), str(exc))]
    if exc.field == "target" and exc.status == 403:
        return [Refusal(_("The emergency was refused: the areas chosen lie outside your own areas. Nothing was "
                          "sent."), str(exc))]
    return [from_dispatch(exc)]


def _form_page(form: dict[str, Any], refusals: list[Refusal] | None = None, status: int = 200) -> flask.Response:
    with runtime().db.session() as s:
        counts = dict(s.execute(select(Device.area_code, func.count()).where(devices_in(my_paths(s)))
                                .group_by(Device.area_code)).all())
        body = flask.render_template("emergency.html", tree=area_tree(s, counts), form=form,
                                     refusals=refusals or [])
    return flask.make_response(body, status)


def scope_sentence(scope: dict[str, Any]) -> str:
    """"N devices in M communes" in the reader's language, from the hub's preview or answer."""
    return _("%(n)s loudspeakers/boards in %(m)s communes", n=scope["reaches"], m=scope["communes"])


def kinds_sentence(scope: dict[str, Any]) -> list[str]:
    return [_("%(kind)s: %(reaches)s of %(targeted)s selected", kind=word(kind), reaches=n["reaches"],
              targeted=n["targeted"]) for kind, n in scope["by_kind"].items()]


@bp.route("/console/emergency", methods=["GET", "POST"])
def emergency_form() -> Any:
    if flask.request.method == "GET":
        return _form_page({"text": "", "areas": flask.request.args.getlist("area"), "expires": "", "key": ""})
    form = _posted()
    step = flask.request.form.get("step", "preview")
    if step == "edit":
        return _form_page(form)
    try:
        data = EmergencySchema().load(_request_body(form))
        if step == "fire":
            answer, _fired = emergency.fire(runtime(), actor(), data)
            command_id = answer.get("command_id")
            if command_id:
                return flask.redirect(flask.url_for("console_progress.progress", command_id=command_id))
            raise DispatchError("target", "nothing was sent")
        scope = emergency.preview(runtime(), actor(), data)
    except (ValidationError, WorkflowError, DispatchError) as exc:
        return _form_page(form, _refusals(exc), 422)
    return flask.render_template("emergency_confirm.html", form=form, scope=scope,
                                 scope_sentence=scope_sentence(scope), kinds=kinds_sentence(scope),
                                 expires_at=datetime.fromisoformat(scope["expires_at"])
                                 if isinstance(scope["expires_at"], str) else scope["expires_at"])


@bp.post("/console/emergency/<command_id>/stop")
def stop_emergency(command_id: str) -> Any:
    """End an emergency early (hub.broadcast.emergency.stop: stop to its speakers, led_clear to its
    boards, with the rights to send to them), then follow the stop on its progress page."""
    with runtime().db.session() as s:
        if visible_command(s, command_id) is None:
            flask.abort(404)
    try:
        answer = emergency.stop(runtime(), actor(), command_id)
    except (WorkflowError, DispatchError) as exc:
        if isinstance(exc, DispatchError) and exc.status == 409:
            sentence = _("This emergency was already stopped.")
        elif isinstance(exc, DispatchError) and exc.status == 404:
            flask.abort(404)
        else:
            sentence = _("The emergency could not be stopped: its devices lie outside your areas.")
        return refuse(409 if isinstance(exc, DispatchError) and exc.status == 409 else 403, sentence, str(exc))
    first = next(iter(answer["commands"].values()), None)
    return flask.redirect(flask.url_for("console_progress.progress", command_id=first or command_id))


__all__ = ["bp", "kinds_sentence", "scope_sentence"]
