"""Live relay (tiếp sóng): the relay sessions the reader started or that reach its areas, starting one
from a station of the stations file to areas of its tree, and stopping one.

Starting and stopping go through hub.broadcast.relay.sessions (start_session, stop_session: the
same as POST /api/relays and DELETE /api/relays/<id>), which dispatch relay_start / relay_stop
through the dispatcher's role and area checks; the console then follows that command's deliveries
on the progress page. Which stations are offered is sessions.offered_stations' rule.
"""
from __future__ import annotations

from typing import Any

import flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func, or_, select

from hub.access.permissions import ANYONE, COMMAND_SENDERS
from hub.broadcast.relay import sessions
from hub.broadcast.relay.stations import StationError
from hub.console.common import NavEntry, actor, add_nav, console_blueprint, runtime
from hub.console.refusals import Refusal, from_dispatch
from hub.console.scope import area_tree, devices_in, my_paths
from hub.delivery.dispatch import DispatchError
from hub.store.models import Delivery, Device
from hub.store.relay_tables import RelaySession

bp = console_blueprint("console_relay", __name__)

RULES = {"relay_list": {"GET": ANYONE},
         "start_relay": {"POST": COMMAND_SENDERS},
         "stop_relay": {"POST": COMMAND_SENDERS}}

add_nav(NavEntry("relay", _l("Live and relay"), "console_relay.relay_list", order=60))

LISTED = 50
STATE_WORDS = {"starting": _l("starting"), "on_air": _l("on air"), "fallback": _l("source missing: fallback"),
               "ended": _l("ended"), "stopping": _l("stopping"), "stopped": _l("stopped"), "error": _l("error")}


@bp.context_processor
def _words() -> dict[str, Any]:
    return {"relay_state": lambda st: str(STATE_WORDS.get(st, st))}


def _visible(s: Any) -> Any:
    """The sessions the reader started, and those whose start reaches a device of its areas (the API's rule)."""
    paths = my_paths(s)
    stmt = select(RelaySession).order_by(RelaySession.created_at.desc(), RelaySession.id).limit(LISTED)
    if paths is None:
        return stmt
    who = actor()
    mine = (RelaySession.created_by_id == who.user_id) if who.user_id is not None else \
        (RelaySession.created_by == who.name)
    reaches = exists().where(Delivery.command_id == RelaySession.start_command_id,
                             Delivery.device_id.in_(select(Device.id).where(devices_in(paths))))
    return stmt.where(or_(mine, reaches))


def _page(form: dict[str, Any] | None = None, refusals: list[Refusal] | None = None, status: int = 200) -> Any:
    rt = runtime()
    form = form or {"station_id": "", "areas": []}
    with rt.db.session() as s:
        stations_problem = None
        try:
            stations = sessions.offered_stations(s, rt.settings, actor())
        except StationError as exc:
            stations, stations_problem = [], str(exc)
        counts = dict(s.execute(select(Device.area_code, func.count()).where(devices_in(my_paths(s)))
                                .group_by(Device.area_code)).all())
        rows = list(s.scalars(_visible(s)))
        body = flask.render_template("relay.html", rows=rows, stations=stations, stations_problem=stations_problem,
                                     station_names={st.id: st.name for st in stations},
                                     tree=area_tree(s, counts), form=form, refusals=refusals or [],
                                     may_send=actor().has_any(COMMAND_SENDERS))
    return flask.make_response(body, status)


@bp.get("/console/relay")
def relay_list() -> Any:
    return _page()


@bp.post("/console/relay/start")
def start_relay() -> Any:
    f = flask.request.form
    form = {"station_id": f.get("station_id", ""), "areas": f.getlist("areas")}
    data: dict[str, Any] = {"station_id": form["station_id"] or None}
    if form["areas"]:
        data["target"] = {"areas": form["areas"]}
    try:
        if not form["station_id"]:
            raise DispatchError("station_id", "choose a station")
        _row, sub = sessions.start_session(runtime(), actor(), data)
    except DispatchError as exc:
        if exc.field == "station_id":
            refusal = Refusal(_("Choose a station from the list."), str(exc))
        elif exc.field == "target" and exc.status != 403:
            refusal = Refusal(_("Choose at least one area to relay to."), str(exc))
        else:
            refusal = from_dispatch(exc)
        return _page(form, [refusal], exc.status)
    return flask.redirect(flask.url_for("console_progress.progress", command_id=sub.command.id))


@bp.post("/console/relay/<relay_id>/stop")
def stop_relay(relay_id: str) -> Any:
    with runtime().db.session() as s:
        if s.scalar(_visible(s).where(RelaySession.id == relay_id)) is None:
            flask.abort(404)
    try:
        _row, sub = sessions.stop_session(runtime(), actor(), relay_id)
    except DispatchError as exc:
        if exc.status == 409:
            refusal = Refusal(_("This relay was already stopped."), str(exc))
        else:
            refusal = from_dispatch(exc)
        return _page(None, [refusal], exc.status)
    return flask.redirect(flask.url_for("console_progress.progress", command_id=sub.command.id))


__all__ = ["bp"]
