"""The emergency in one step over HTTP: fire, preview (a dry run), stop.

`POST /api/emergency/preview` answers "N devices in M communes" for the console to ask "fire?";
`POST /api/emergency` fires; `POST /api/emergency/<command id>/stop` ends it early. Operators and
administrators may, within their areas (hub.content.workflow.EMERGENCY_ISSUERS). Refusals are JSON
naming the field: 422 for a bad request (empty text, unknown area, text and content_id both, an
expiry passed, a malformed CAP alert with its line and reason), 403 for a target outside the
caller's areas, 409 for a content not published. The logic is hub.broadcast.emergency.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.views import MethodView
from marshmallow import Schema, fields

from hub.api.common import HubBlueprint, actor, runtime
from hub.broadcast import emergency
from hub.content.workflow import EMERGENCY_ISSUERS
from hub.hookspecs import hookimpl
from hub.schemas.emergency import EmergencySchema

blp = HubBlueprint("emergency", __name__, url_prefix="/api/emergency",
                   description="Emergency in one step (phát khẩn cấp): a text, a published content or a CAP "
                               "alert, spoken, published and sent in the emergency class to every device of "
                               "its target at once; a dry run tells first how far it reaches.")

RULES = {"Emergency": {"POST": EMERGENCY_ISSUERS},
         "EmergencyPreview": {"POST": EMERGENCY_ISSUERS},
         "EmergencyStop": {"POST": EMERGENCY_ISSUERS}}


class _Reach(Schema):
    targeted = fields.Int()
    reaches = fields.Int()


class _Unreachable(Schema):
    device_id = fields.Str()
    kind = fields.Str()
    vendor = fields.Str()
    area_code = fields.Str()
    commune = fields.Str()
    state = fields.Str(metadata={"description": "failed, unsupported, offline (sent, expected to expire), …"})
    reason = fields.Str()


class ScopeSchema(Schema):
    devices = fields.Int(metadata={"description": "Devices the target selects"})
    reaches = fields.Int(metadata={"description": "Devices sent to that are not known to be offline"})
    communes = fields.Int(metadata={"description": "Communes those devices are in"})
    summary = fields.Str(metadata={"description": "\"N devices in M communes\""})
    by_kind = fields.Dict(keys=fields.Str(), values=fields.Nested(_Reach))
    by_vendor = fields.Dict(keys=fields.Str(), values=fields.Nested(_Reach))
    cannot_receive = fields.List(fields.Nested(_Unreachable))
    title = fields.Str()
    source = fields.Str(metadata={"description": "text, cap or content"})
    expires_at = fields.Str()


class PreviewSchema(ScopeSchema):
    preview = fields.Bool()
    target = fields.Dict()


class FiredSchema(ScopeSchema):
    emergency_id = fields.Str()
    content_id = fields.Str()
    command_id = fields.Str(metadata={"description": "The speakers' play command (the boards' when there is none)"})
    commands = fields.Dict(keys=fields.Str(), values=fields.Str(allow_none=True),
                           metadata={"description": "play (speakers) and led_show (boards) command ids"})
    speech = fields.Dict(allow_none=True, metadata={"description": "Who spoke it, how long it took, or why not"})
    timings_ms = fields.Dict(keys=fields.Str(), values=fields.Int(), metadata={
        "description": "Milliseconds from the request to boards_sent, spoken, speakers_sent"})
    replayed = fields.Bool()


class StoppedSchema(Schema):
    emergency_id = fields.Str()
    content_id = fields.Str()
    stopped_at = fields.Str()
    stopped_by = fields.Str()
    commands = fields.Dict(keys=fields.Str(), values=fields.Str())
    devices = fields.Int()


@blp.route("")
class Emergency(MethodView):
    @blp.arguments(EmergencySchema)
    @blp.response(201, FiredSchema)
    @blp.alt_response(200, schema=FiredSchema, success=True,
                      description="The idempotency key was used before: that emergency, with replayed true")
    @blp.fails(403, 409, 422)
    def post(self, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Fire an emergency

        Phát khẩn cấp: writes the bulletin (published at once, without a second approver, audited
        as `emergency.fire` with the caller), sends the boards the text, speaks it with the offline
        emergency voice and sends the speakers the audio, all in the emergency class. Answers how
        many devices in how many communes it reaches, by kind and vendor, and names the target's
        devices that cannot receive it (offline, disabled, unsupported). Follow each device with
        `GET /api/commands/<id>/deliveries`.
        """
        answer, fired = emergency.fire(runtime(), actor(), data)
        return answer, 201 if fired else 200


@blp.route("/preview")
class EmergencyPreview(MethodView):
    @blp.arguments(EmergencySchema)
    @blp.response(200, PreviewSchema)
    @blp.fails(403, 409, 422)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Preview an emergency (dry run)

        The same body as firing, checked the same way; answers the scope ("N devices in M communes",
        by kind and vendor, and who cannot receive it) and writes, sends and speaks nothing.
        """
        return emergency.preview(runtime(), actor(), data)


@blp.route("/<string:command_id>/stop")
class EmergencyStop(MethodView):
    @blp.response(200, StoppedSchema)
    @blp.fails(403, 404, 409)
    def post(self, command_id: str) -> dict[str, Any]:
        """Stop an emergency early

        Dừng phát khẩn cấp: `stop` to its speakers and `led_clear` to its boards, in the emergency
        class; either of its command ids names it. Needs the rights to send to those devices;
        audited as `emergency.stop`.
        """
        return emergency.stop(runtime(), actor(), command_id)


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
