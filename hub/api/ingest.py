"""What the ingest could not store: its quarantine (hub.delivery.quarantine), for administrators."""
from __future__ import annotations

from datetime import datetime
from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from hub.delivery import quarantine
from hub.api.common import HubBlueprint, QueryArgs, page_of, runtime, scope
from hub.access.permissions import ADMINISTRATORS
from hub.hookspecs import hookimpl

blp = HubBlueprint("ingest", __name__, url_prefix="/api/ingest",
                   description="Device messages the ingest kept aside instead of storing.")

# Who may call each view (hook register_blueprints; hub.access.permissions refuses the rest).
RULES = {"Quarantine": {"GET": ADMINISTRATORS}}


class QuarantineQuery(QueryArgs):
    vendor = ma.fields.Str(metadata={"description": "Only this vendor plugin's messages"})
    since = ma.fields.AwareDateTime(metadata={"description": "Heard at or after this instant"})


class QuarantineOutSchema(ma.Schema):
    id = ma.fields.Int()
    at = ma.fields.AwareDateTime(metadata={"description": "When the hub heard it"})
    vendor = ma.fields.Str()
    address = ma.fields.Str(metadata={"description": "The device's address (or the topic, unparsed)"})
    device_id = ma.fields.Str(allow_none=True, metadata={"description": "None: no registered device has it"})
    kind = ma.fields.Str(metadata={"description": "ack, status, presence, or unparsed (the raw message)"})
    payload = ma.fields.Str(metadata={"description": "An ASCII repr of what was received or parsed"})
    reason = ma.fields.Str()


@blp.route("/quarantine")
class Quarantine(MethodView):
    @blp.arguments(QuarantineQuery, location="query", as_kwargs=True)
    @blp.response(200, QuarantineOutSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters, vendor: str | None = None,
            since: datetime | None = None) -> list[dict[str, Any]]:
        """List quarantined device messages

        Messages of devices in the caller's areas that the ingest could not parse or store, newest
        first: a device sending them needs its firmware looked at. Messages from addresses no
        registered device has are shown to unrestricted callers only (`hub ingest quarantine`
        has them all).
        """
        with runtime().db.session() as s:
            stmt = quarantine.query(scope(s), vendor=vendor, since=since)
            return [quarantine.as_dict(r) for r in page_of(s, stmt, pagination_parameters)]


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
