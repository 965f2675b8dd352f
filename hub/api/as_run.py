"""The as-run log (proof of play): what each device of the caller's areas actually played, with
the planned slot beside it and the planned plays that never reached the air (hub.reports.as_run)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from hub.access.permissions import ANYONE
from hub.api.common import HubBlueprint, QueryArgs, area_path, fail, runtime, scope
from hub.hookspecs import hookimpl
from hub.reports import as_run
from hub.schemas.fields import Instant
from hub.store.as_run_tables import AsRunOutcome

blp = HubBlueprint("as_run", __name__, url_prefix="/api/as-run",
                   description="Proof of play: per device and item, when it started and ended and whether it "
                               "finished, was interrupted (by what), stopped, failed or was skipped — from the "
                               "devices' acks and status, with the planned slot beside it.")

RULES = {"AsRunLog": {"GET": ANYONE}}  # reads are limited to the caller's areas


class AsRunQuery(QueryArgs):
    device_id = ma.fields.Str(metadata={"description": "One device"})
    area = ma.fields.Str(metadata={"description": "Devices in this area's subtree"})
    from_ = Instant(data_key="from", metadata={"description": "Rows still on air at or after this instant"})
    to = Instant(metadata={"description": "Rows that began (or were planned) before this instant"})
    command_id = ma.fields.Str(metadata={"description": "One command (its resumes included)"})


class _Ref(ma.Schema):
    command_id = ma.fields.Str()
    priority = ma.fields.Str()


class _Planned(ma.Schema):
    start_at = ma.fields.Str(allow_none=True, metadata={"description": "+07:00"})
    expires_at = ma.fields.Str(allow_none=True, metadata={"description": "The slot's end, +07:00"})
    programme_key = ma.fields.Str(allow_none=True)


class AsRunRowSchema(ma.Schema):
    id = ma.fields.Int(allow_none=True, metadata={"description": "None on a not_played row"})
    device_id = ma.fields.Str()
    device_name = ma.fields.Str()
    area_code = ma.fields.Str()
    commune = ma.fields.Str()
    command_id = ma.fields.Str()
    verb = ma.fields.Str()
    content_id = ma.fields.Str(allow_none=True)
    source = ma.fields.Str(allow_none=True)
    priority = ma.fields.Str()
    rank = ma.fields.Str(metadata={"description": "The arbiter's rank: normal, priority, live, emergency"})
    started_at = ma.fields.Str(allow_none=True, metadata={"description": "+07:00"})
    ended_at = ma.fields.Str(allow_none=True, metadata={"description": "+07:00; none while playing"})
    outcome = ma.fields.Str(metadata={"description": ", ".join((*AsRunOutcome.ALL, as_run.NOT_PLAYED))})
    reason = ma.fields.Str(allow_none=True)
    delivery_state = ma.fields.Str(allow_none=True, metadata={"description": "On a not_played row"})
    interrupted_by = ma.fields.Nested(_Ref, allow_none=True)
    planned = ma.fields.Nested(_Planned)
    resume_of = ma.fields.Str(allow_none=True)
    follow_up = ma.fields.Str(allow_none=True, metadata={"description": "resumed | resuming | skipped"})
    resumed_by = ma.fields.Str(allow_none=True)


@blp.route("")
class AsRunLog(MethodView):
    @blp.arguments(AsRunQuery, location="query", as_kwargs=True)
    @blp.response(200, AsRunRowSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters, device_id: str | None = None,
            area: str | None = None, from_: datetime | None = None, to: datetime | None = None,
            command_id: str | None = None) -> list[dict[str, Any]]:
        """What devices actually played

        Rows of the caller's devices, oldest first: segments derived from acks and status reports
        (`playing`, `finished`, `interrupted`, `stopped`, `failed`, `skipped`) and `not_played`
        rows for planned plays that never reached the air on a device.
        """
        if from_ is not None and to is not None and to <= from_:
            fail(422, "must be after from", field="to", location="query")
        with runtime().db.session() as s:
            path = None
            if area is not None:
                path = area_path(s, area)
                if path is None:
                    fail(422, f"unknown area code {area}", field="area", location="query")
            got = as_run.rows(s, scope(s), device_id=device_id, area_path=path, since=from_, until=to,
                              command_id=command_id)
        pagination_parameters.item_count = len(got)
        first = pagination_parameters.first_item
        return got[first:first + pagination_parameters.page_size]


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
