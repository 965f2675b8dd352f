"""Live broadcast and relay (*phát trực tiếp, tiếp sóng*): sessions through the hub's Icecast, and
the stations a province relays."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import exists, or_, select

from hub.access.permissions import ANYONE, COMMAND_SENDERS
from hub.api.commands import _device_in_scope
from hub.api.common import HubBlueprint, QueryArgs, actor, fail, not_found, page_of, runtime, scope
from hub.broadcast.relay.sessions import STATES, describe, events_of, offered_stations, start_session, stop_session
from hub.broadcast.relay.stations import StationError
from hub.capabilities import PRIORITIES
from hub.hookspecs import hookimpl
from hub.store.models import Delivery
from hub.store.relay_tables import RelaySession

blp = HubBlueprint("relays", __name__, url_prefix="/api/relays",
                   description="Live broadcasts and relays of stations (phát trực tiếp, tiếp sóng) through the "
                               "hub's Icecast: one mount per session, a fallback while its source is away, dead "
                               "air recorded. `hub relays run` must run.")
stations_blp = HubBlueprint("stations", __name__, url_prefix="/api/stations",
                            description="The stations a province relays (the stations file).")

RULES = {"Relays": {"GET": ANYONE, "POST": COMMAND_SENDERS}, "RelayById": {"GET": ANYONE, "DELETE": COMMAND_SENDERS}}
STATION_RULES = {"list_stations": {"GET": ANYONE}}


class RelayStartSchema(ma.Schema):
    station_id = ma.fields.Str(validate=ma.validate.Length(min=1, max=64),
                               metadata={"description": "Relay this station of GET /api/stations"})
    content_id = ma.fields.Str(validate=ma.validate.Length(min=1, max=64),
                               metadata={"description": "Broadcast this published content's audio, once"})
    live = ma.fields.Bool(metadata={"description": "An operator's live source: the answer's `source` says "
                                                   "where to send it"})
    target = ma.fields.Dict(required=True, metadata={"description": "The devices that relay it (a command "
                                                                    "target: areas, devices, groups, kinds…)"})
    priority = ma.fields.Str(validate=ma.validate.OneOf(PRIORITIES))
    expires_at = ma.fields.Str(metadata={"description": "Devices that did not confirm relay_start by then end "
                                                        "`expired` (ISO 8601 with offset)"})


class RelayEventSchema(ma.Schema):
    kind = ma.fields.Str(metadata={"description": "dead_air, on_air, source_ended, retry"})
    reason = ma.fields.Str(allow_none=True, metadata={"description": "For dead_air: no_bytes, silence, source_lost"})
    at = ma.fields.AwareDateTime()
    detail = ma.fields.Dict(allow_none=True)


class LiveSourceSchema(ma.Schema):
    url = ma.fields.Str()
    user = ma.fields.Str()
    password = ma.fields.Str()
    mount = ma.fields.Str()
    content_type = ma.fields.Str()
    example = ma.fields.Str()


class RelaySchema(ma.Schema):
    id = ma.fields.Str()
    kind = ma.fields.Str(metadata={"description": "station, content or live"})
    station_id = ma.fields.Str(allow_none=True)
    content_id = ma.fields.Str(allow_none=True)
    mount = ma.fields.Str()
    listen_url = ma.fields.Str(metadata={"description": "What devices fetch (sent to them in relay_start)"})
    target = ma.fields.Dict()
    priority = ma.fields.Str()
    desired = ma.fields.Str(metadata={"description": "running or stopped"})
    state = ma.fields.Str(metadata={"description": ", ".join(STATES)})
    error = ma.fields.Str(allow_none=True)
    listeners = ma.fields.Int(metadata={"description": "On the session's mount (not those parked on the fallback)"})
    bytes_read = ma.fields.Int()
    bytes_sent = ma.fields.Int()
    start_command_id = ma.fields.Str(allow_none=True)
    stop_command_id = ma.fields.Str(allow_none=True)
    created_by = ma.fields.Str()
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime(allow_none=True)
    stopped_by = ma.fields.Str(allow_none=True)
    stopped_at = ma.fields.AwareDateTime(allow_none=True)
    dead_air = ma.fields.Int(metadata={"description": "Dead-air episodes recorded"})
    events = ma.fields.List(ma.fields.Nested(RelayEventSchema))
    source = ma.fields.Nested(LiveSourceSchema, metadata={"description": "Live sessions, to their creator only: "
                                                                         "where the source client sends"})


class RelayQuery(QueryArgs):
    state = ma.fields.Str(validate=ma.validate.OneOf(STATES))


class StationSchema(ma.Schema):
    id = ma.fields.Str()
    name = ma.fields.Str()
    url = ma.fields.Str()
    areas = ma.fields.List(ma.fields.Str())


def _mine() -> Any:
    who = actor()
    if who.user_id is not None:
        return RelaySession.created_by_id == who.user_id
    return RelaySession.created_by == who.name


def _visible(stmt: Any, paths: tuple[str, ...] | None) -> Any:
    """A caller sees the sessions it started and those that reach a device in its areas."""
    if paths is None:
        return stmt
    reaches = exists().where(Delivery.command_id == RelaySession.start_command_id, _device_in_scope(paths))
    return stmt.where(or_(_mine(), reaches))


def _is_mine(row: RelaySession) -> bool:
    who = actor()
    return row.created_by_id == who.user_id if who.user_id is not None else row.created_by == who.name


@blp.route("")
class Relays(MethodView):
    @blp.arguments(RelayQuery, location="query", as_kwargs=True)
    @blp.response(200, RelaySchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters, state: str | None = None) -> list[dict[str, Any]]:
        """List relay sessions

        Newest first: those the caller started and those that reach its areas.
        """
        with runtime().db.session() as s:
            stmt = _visible(select(RelaySession), scope(s)).order_by(RelaySession.created_at.desc(), RelaySession.id)
            if state is not None:
                stmt = stmt.where(RelaySession.state == state)
            return [describe(runtime().settings, r) for r in page_of(s, stmt, pagination_parameters)]

    @blp.arguments(RelayStartSchema)
    @blp.response(201, RelaySchema)
    @blp.fails(403, 409)
    def post(self, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Start a relay or a live broadcast

        Exactly one source: `station_id` (a station of the stations file), `content_id` (a published
        content's audio, played once) or `live: true` (the answer's `source` gives the URL and
        credentials for an Icecast source client). The session gets its own mount; the target's
        devices are sent `relay_start` with its listen URL at once (`start_command_id`; its deliveries
        show who confirmed). A target outside the caller's areas is refused whole (403).
        """
        rt = runtime()
        row, _ = start_session(rt, actor(), data)
        return describe(rt.settings, row, events=[], with_source=True), 201


@blp.route("/<string:relay_id>")
class RelayById(MethodView):
    @blp.response(200, RelaySchema)
    @blp.fails(404)
    def get(self, relay_id: str) -> dict[str, Any]:
        """Show a relay session

        Its state (starting, on_air, fallback, ended, stopping, stopped, error), listeners and bytes
        as Icecast counts them, and what happened on its air (dead air with its reason, back on air).
        """
        rt = runtime()
        with rt.db.session() as s:
            row = s.scalar(_visible(select(RelaySession), scope(s)).where(RelaySession.id == relay_id))
            if row is None:
                not_found("relay", relay_id)
            return describe(rt.settings, row, events=events_of(s, relay_id), with_source=_is_mine(row))

    @blp.response(200, RelaySchema)
    @blp.fails(403, 404, 409)
    def delete(self, relay_id: str) -> dict[str, Any]:
        """Stop a relay session

        Sends `relay_stop` to the session's target (`stop_command_id`) and takes the mount off air.
        Needs the rights to send to that target (403).
        """
        rt = runtime()
        with rt.db.session() as s:
            if s.scalar(_visible(select(RelaySession.id), scope(s)).where(RelaySession.id == relay_id)) is None:
                not_found("relay", relay_id)
        row, _ = stop_session(rt, actor(), relay_id)
        with rt.db.session() as s:
            return describe(rt.settings, row, events=events_of(s, relay_id))


@stations_blp.route("")
@stations_blp.response(200, StationSchema(many=True))
@stations_blp.fails(409)
def list_stations() -> list[dict[str, Any]]:
    """List the stations offered

    Những đài được tiếp sóng: those of the stations file offered to the caller's areas (a station
    without areas is offered to all). 409 when the file cannot be read, naming what is wrong.
    """
    rt = runtime()
    with rt.db.session() as s:
        try:
            return [st.to_dict() for st in offered_stations(s, rt.settings, actor())]
        except StationError as exc:
            fail(409, str(exc))


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
    register(stations_blp, STATION_RULES)
