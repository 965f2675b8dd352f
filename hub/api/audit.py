"""The audit log (nhật ký): who did what to which targets and when, within the caller's areas."""
from __future__ import annotations

from datetime import datetime
from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from hub.access import audit
from hub.api.account_schemas import AuditOutSchema, VerdictSchema
from hub.api.common import HubBlueprint, QueryArgs, area_path, fail, page_of, row_id_field, runtime, scope
from hub.schemas.fields import Instant
from hub.access.permissions import ADMINISTRATORS, AUDIT_READERS
from hub.hookspecs import hookimpl

blp = HubBlueprint("audit", __name__, url_prefix="/api/audit",
                   description="Append-only, hash-chained record of sign-ins, commands and every change to "
                               "contents, devices, groups, areas, accounts and tokens.")

# Who may call each view (hook register_blueprints; hub.access.permissions refuses the rest).
RULES = {"AuditLog": {"GET": AUDIT_READERS},
         "AuditVerify": {"GET": ADMINISTRATORS}}


class AuditQuery(QueryArgs):
    actor = ma.fields.Str(metadata={"description": "Account name (or cli:<os user>, local-admin)"})
    actor_id = row_id_field(metadata={"description": "Account id: one account, not everyone who held its name"})
    action = ma.fields.Str(metadata={"description": "Exact (device.update), or a prefix ending in . or * (device.)"})
    object_type = ma.fields.Str()
    object_id = ma.fields.Str()
    area = ma.fields.Str(metadata={"description": "Only entries that touched this area's subtree"})
    since = Instant(metadata={"description": "From this instant (inclusive)"})
    until = Instant(metadata={"description": "Before this instant"})


@blp.route("")
class AuditLog(MethodView):
    @blp.arguments(AuditQuery, location="query", as_kwargs=True)
    @blp.response(200, AuditOutSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters, area: str | None = None,
            since: datetime | None = None, until: datetime | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Query the audit log

        Entries that touched the caller's areas, newest first. An entry without an area (a
        command-line import, a failed sign-in of an unknown name) is shown to unrestricted callers
        only; `hub audit export` has them all.
        """
        with runtime().db.session() as s:
            path = None
            if area is not None:
                path = area_path(s, area)
                if path is None:
                    fail(422, f"unknown area code {area}", field="area", location="query")
            stmt = audit.query(s, scope(s), area_path=path, since=since, until=until, **filters)
            return [audit.entry_dict(e) for e in page_of(s, stmt, pagination_parameters)]


@blp.route("/verify")
class AuditVerify(MethodView):
    @blp.response(200, VerdictSchema)
    def get(self) -> dict[str, Any]:
        """Verify the hash chain

        Walks the whole log; `ok` false names the first broken link. Same as `hub audit verify`.
        """
        with runtime().db.session() as s:
            v = audit.verify(s)
        return {"ok": v.ok, "entries": v.entries, "head": v.head, "broken_seq": v.broken_seq, "problem": v.problem,
                "keyed_from": v.keyed_from}


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
