"""Commands: one operator instruction fanned out to every device its target selects, one delivery
row per device."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Api
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from hub.api.common import HubBlueprint, QueryArgs, actor, in_scope, not_found, page_of, runtime, scope
from hub.api.delivery_rows import page_rows, row_dicts, select_rows
from hub.api.schemas import CommandOutSchema, CommandResultSchema, DeliverySchema
from hub.capabilities import PRIORITIES, VERBS
from hub.delivery.command_states import COMMAND_STATES, command_state, state_condition
from hub.delivery.dispatch import cancel, issued_by, submit
from hub.schemas.fields import Instant
from hub.store.models import DELIVERY_STATES, Area, Command, Delivery, Device
from hub.schemas.command import VERB_PARAMS, CommandSchema
from hub.access.permissions import ANYONE, COMMAND_SENDERS
from hub.hookspecs import hookimpl

blp = HubBlueprint("commands", __name__, url_prefix="/api/commands",
                   description="Commands (lệnh điều khiển) and their per-device deliveries. A delivery "
                               "ends in exactly one of acked, failed, expired, unsupported, superseded; "
                               "before that it is scheduled (waiting for start_at), queued or sent.")

# Who may call each view (hook register_blueprints; hub.access.permissions refuses the rest).
RULES = {"Commands": {"GET": ANYONE, "POST": COMMAND_SENDERS},
         "CommandById": {"GET": ANYONE},
         "CommandCancel": {"POST": COMMAND_SENDERS},
         "Deliveries": {"GET": ANYONE}}



class CommandQuery(QueryArgs):
    state = ma.fields.Str(validate=ma.validate.OneOf(COMMAND_STATES), metadata={
        "description": "waiting (start_at not reached), running (deliveries still under way), done (every "
                       "delivery ended), cancelled"})
    verb = ma.fields.Str(validate=ma.validate.OneOf(VERBS))
    priority = ma.fields.Str(validate=ma.validate.OneOf(PRIORITIES), metadata={"description": "The class"})
    issuer = ma.fields.Str(metadata={"description": "The issuing account's name"})
    since = Instant(data_key="from", metadata={"description": "Created at or after this instant (any offset)"})
    until = Instant(data_key="to", metadata={"description": "Created before this instant (any offset)"})

    @ma.validates_schema
    def _range(self, data: dict[str, Any], **_: Any) -> None:
        if "since" in data and "until" in data and data["until"] <= data["since"]:
            raise ma.ValidationError("must be later than from", field_name="to")


class DeliveryQuery(QueryArgs):
    state = ma.fields.Str(validate=ma.validate.OneOf(DELIVERY_STATES))


def _device_in_scope(paths: tuple[str, ...]) -> Any:
    """SQL condition: the delivery's device lies in `paths` (a removed device no longer does)."""
    return Delivery.device_id.in_(select(Device.id).join(Area, Area.code == Device.area_code)
                                  .where(in_scope(Area.path, paths)))


def _sees_all_of(session: Session, cmd: Command, paths: tuple[str, ...] | None) -> bool:
    """The issuer — the same account, not merely the same name — sees all of its command."""
    if paths is None:
        return True
    return session.scalar(select(exists().where(Command.id == cmd.id, issued_by(session, actor()))))


def _visible_command(session: Session, command_id: str) -> Command:
    """A caller sees the commands it issued and those that reach a device in its areas."""
    cmd = session.get(Command, command_id)
    paths = scope(session)
    if cmd is None:
        not_found("command", command_id)
    if not _sees_all_of(session, cmd, paths):
        reaches = session.scalar(select(exists().where(Delivery.command_id == cmd.id, _device_in_scope(paths))))
        if not reaches:
            not_found("command", command_id)
    return cmd


def _counts(session: Session, cmd: Command, paths: tuple[str, ...] | None) -> dict[str, int]:
    """Deliveries by state: all of them for the issuer, those in the caller's areas for others."""
    return _bulk_counts(session, [cmd], paths)[cmd.id]


def _bulk_counts(session: Session, cmds: list[Command], paths: tuple[str, ...] | None) -> dict[str, dict[str, int]]:
    """`_counts` for a page of commands in two queries rather than one per command."""
    out = {c.id: dict.fromkeys(DELIVERY_STATES, 0) for c in cmds}
    if paths is None:
        whole, scoped = [c.id for c in cmds], []
    else:
        ids = [c.id for c in cmds]
        mine = set(session.scalars(select(Command.id).where(Command.id.in_(ids), issued_by(session, actor()))))
        whole, scoped = [i for i in ids if i in mine], [i for i in ids if i not in mine]
    for id_list, cond in ((whole, None), (scoped, _device_in_scope(paths) if scoped else None)):
        if not id_list:
            continue
        stmt = (select(Delivery.command_id, Delivery.state, func.count()).where(Delivery.command_id.in_(id_list))
                .group_by(Delivery.command_id, Delivery.state))
        if cond is not None:
            stmt = stmt.where(cond)
        for command_id, state, n in session.execute(stmt):
            out[command_id][state] = n
    return out


def command_dict(cmd: Command, n: dict[str, int]) -> dict[str, Any]:
    return {"id": cmd.id, "verb": cmd.verb, "params": cmd.params, "content_id": cmd.content_id,
            "priority": cmd.priority, "start_at": cmd.start_at, "released_at": cmd.released_at,
            "cancelled_at": cmd.cancelled_at, "cancelled_by": cmd.cancelled_by,
            "expires_at": cmd.expires_at, "idempotency_key": cmd.account_idempotency_key or cmd.idempotency_key,
            "issuer": cmd.issuer, "target": cmd.target, "created_at": cmd.created_at, "total": cmd.total,
            "counts": n, "state": command_state(cmd, n)}


@blp.route("")
class Commands(MethodView):
    @blp.arguments(CommandQuery, location="query", as_kwargs=True)
    @blp.response(200, CommandOutSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters, state: str | None = None,
            since: datetime | None = None, until: datetime | None = None, **filters: Any) -> list[dict[str, Any]]:
        """List recent commands

        Lệnh gần đây, newest first: those the caller issued and those that reach its areas,
        optionally only those in a state, of a class (priority), verb or issuer, or created in
        [from, to). A filter value that is not one of the allowed ones is refused naming it.
        """
        with runtime().db.session() as s:
            paths = scope(s)
            stmt = select(Command).order_by(Command.created_at.desc(), Command.id)
            if paths is not None:
                reaches = exists().where(Delivery.command_id == Command.id, _device_in_scope(paths))
                stmt = stmt.where(or_(issued_by(s, actor()), reaches))
            for key, value in filters.items():
                stmt = stmt.where(getattr(Command, key) == value)
            if since is not None:
                stmt = stmt.where(Command.created_at >= since)
            if until is not None:
                stmt = stmt.where(Command.created_at < until)
            if state is not None:  # the deliveries that count are those _bulk_counts counts
                visible = None if paths is None else or_(issued_by(s, actor()), _device_in_scope(paths))
                stmt = stmt.where(state_condition(state, visible))
            page = page_of(s, stmt, pagination_parameters)
            n = _bulk_counts(s, page, paths)
            return [command_dict(c, n[c.id]) for c in page]

    @blp.arguments(CommandSchema, description="`params` depend on the verb: see the *Params schemas.")
    @blp.response(201, CommandResultSchema, description="The command was accepted; its deliveries are queued")
    @blp.alt_response(200, schema=CommandResultSchema, success=True,
                      description="The idempotency key was used before for the same command: that command, "
                                  "with replayed true")
    @blp.fails(403, 409)
    def post(self, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Issue a command

        Gửi lệnh. The target is resolved now; every selected device gets a delivery, `queued` when it
        can carry out the verb (`scheduled` until `start_at` when that lies in the future: the
        scheduler releases it to the workers, which publish at that instant), `unsupported` when it
        lacks a capability, `failed` when it is disabled
        or its vendor plugin is missing. A target reaching outside the caller's areas is refused
        whole (403) and nothing is created. Repeating an `idempotency_key` answers the first command
        (200, replayed); reusing it for a different command is a conflict (409).
        """
        sub = submit(runtime(), actor(), data)
        body = command_dict(sub.command, sub.counts)
        body["replayed"] = not sub.created
        return body, 201 if sub.created else 200


@blp.route("/<string:command_id>")
class CommandById(MethodView):
    @blp.response(200, CommandOutSchema)
    @blp.fails(404)
    def get(self, command_id: str) -> dict[str, Any]:
        """Show a command

        One command with its deliveries counted by state.
        """
        with runtime().db.session() as s:
            cmd = _visible_command(s, command_id)
            return command_dict(cmd, _counts(s, cmd, scope(s)))


@blp.route("/<string:command_id>/cancel")
class CommandCancel(MethodView):
    @blp.response(200, CommandOutSchema)
    @blp.fails(403, 404, 409)
    def post(self, command_id: str) -> dict[str, Any]:
        """Cancel a scheduled command

        Hủy lệnh đã lên lịch. Before its `start_at`, every delivery not yet sent ends `superseded`
        with the reason "cancelled by <caller>"; a worker already holding it skips it. Needs the
        rights to send the command: its target must lie in the caller's areas (403). A command
        sent at once, already started or already cancelled cannot be cancelled (409).
        """
        with runtime().db.session() as s:
            _visible_command(s, command_id)  # 404 for a command the caller cannot see
        sub = cancel(runtime(), actor(), command_id)
        with runtime().db.session() as s:
            return command_dict(sub.command, _counts(s, sub.command, scope(s)))


@blp.route("/<string:command_id>/deliveries")
class Deliveries(MethodView):
    @blp.arguments(DeliveryQuery, location="query", as_kwargs=True)
    @blp.response(200, DeliverySchema(many=True))
    @blp.paginate()
    @blp.fails(404)
    def get(self, pagination_parameters: PaginationParameters, command_id: str,
            state: str | None = None) -> list[dict[str, Any]]:
        """List a command's deliveries

        Kết quả từng thiết bị: one row per selected device, in the caller's areas unless it issued
        the command, naming the device (name, address, vendor, kind) and its commune.
        """
        with runtime().db.session() as s:
            cmd = _visible_command(s, command_id)
            paths = scope(s)
            stmt = select_rows(Delivery.command_id == cmd.id).order_by(Delivery.device_id)
            if not _sees_all_of(s, cmd, paths):
                stmt = stmt.where(_device_in_scope(paths))
            if state is not None:
                stmt = stmt.where(Delivery.state == state)
            return row_dicts(s, page_rows(s, stmt, pagination_parameters))


def document_verb_params(api: Api) -> None:
    """Put each verb's params schema in the OpenAPI components, for clients to read."""
    seen: set[type] = set()
    for verb, schema in VERB_PARAMS.items():
        if schema in seen:
            continue
        seen.add(schema)
        name = "EmptyParams" if not schema._declared_fields else \
            "".join(p.capitalize() for p in verb.split("_")) + "Params"
        api.spec.components.schema(name, schema=schema)


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
