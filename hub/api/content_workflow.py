"""The editorial workflow over HTTP: POST /api/contents/<id>/<action> and the versions of a content.

One view per action, so that the permission table holds the workflow's own roles for each
(hub.content.workflow.TRANSITIONS): an approver reaches approve, an editor does not. A refusal
answers JSON naming the rule (`rule`): 409 for the wrong order, 403 for role, area or four eyes,
422 for a missing reason (hub.api.errors.RULE_STATUS).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.views import MethodView

from hub.access.permissions import ANYONE
from hub.api.common import HubBlueprint, actor, audit, fail, runtime
from hub.api.contents import visible_content, with_etag, writable_content
from hub.api.schemas import ActionSchema, ContentOutSchema, ContentVersionSchema, SpeakSchema
from hub.content import editing, publishing
from hub.content.workflow import TRANSITIONS, check_area
from hub.hookspecs import hookimpl
from hub.store.content_tables import ContentStatus, ContentVersion
from hub.store.models import Content

blp = HubBlueprint("content_workflow", __name__, url_prefix="/api/contents",
                   description="Editorial workflow: submit, approve, reject, publish, archive; versions of edits.")

SUMMARIES = {
    "submit": "Submit a draft for approval (gửi duyệt)",
    "approve": "Approve a submitted content (duyệt); not its own author's",
    "reject": "Send a content back with a reason (từ chối)",
    "publish": "Publish an approved content (phát hành): operators may then send it",
    "approve_and_publish": "Approve and publish at once: an administrator's emergency path",
    "archive": "Archive a content (lưu trữ): it can no longer be sent",
}


def view_name(action: str) -> str:
    return "Content" + "".join(part.title() for part in action.split("_"))


RULES: dict[str, dict[str, Any]] = {view_name(a): {"POST": t.roles} for a, t in TRANSITIONS.items()}
RULES["ContentVersions"] = {"GET": ANYONE}
RULES["ContentSpeak"] = {"POST": TRANSITIONS["publish"].roles}  # those who publish may have it spoken again


def _make_view(action: str) -> type[MethodView]:
    def post(self: MethodView, data: dict[str, Any], content_id: str) -> tuple[Content, int, dict[str, str]]:
        with runtime().db.session() as s:
            content = writable_content(s, content_id)
            editing.transition(s, actor(), content, action, data.get("reason"))
            spoken = content.status == ContentStatus.PUBLISHED and publishing.needs_speech(content)
        if not spoken:
            return with_etag(content)
        publishing.speak(runtime(), [content_id])  # committed first: synthesis takes seconds
        with runtime().db.session() as s:
            return with_etag(visible_content(s, content_id))

    roles = " or ".join(sorted(TRANSITIONS[action].roles))
    post.__doc__ = (f"{SUMMARIES.get(action, action)}\n\nFrom {' or '.join(sorted(TRANSITIONS[action].sources))} "
                    f"to {TRANSITIONS[action].target}; for {roles} of the content's area. Refusals name the "
                    f"rule: 409 order, 403 role/area/four_eyes, 422 reason.")
    post = blp.fails(403, 404, 409, 422)(blp.response(200, ContentOutSchema)(
        blp.arguments(ActionSchema, required=False)(post)))
    return type(view_name(action), (MethodView,), {"post": post})


for _action in TRANSITIONS:
    blp.route(f"/<string:content_id>/{_action}")(_make_view(_action))


@blp.route("/<string:content_id>/speak")
class ContentSpeak(MethodView):
    @blp.arguments(SpeakSchema, required=False)
    @blp.response(200, ContentOutSchema)
    @blp.fails(403, 404, 409)
    def post(self, data: dict[str, Any], content_id: str) -> tuple[Content, int, dict[str, str]]:
        """Speak a published text bulletin again

        Makes its audio now (after a failure, or with `"force": true` to replace the audio an
        offline voice made once the preferred provider answers again). `speech` on the answer says
        who spoke, what failed before, or why nobody could.
        """
        force = bool((data or {}).get("force"))
        with runtime().db.session() as s:
            content = writable_content(s, content_id)
            check_area(s, actor(), content, "speak")  # reading a province's bulletin is not owning it
            if content.status not in (None, ContentStatus.PUBLISHED) or not publishing.needs_speech(content):
                fail(409, f"content {content_id} is not a published text bulletin (kind {content.kind}, "
                          f"status {content.status})", field="content_id")
        outcome = publishing.speak(runtime(), [content_id], force=force).get(content_id)
        with runtime().db.session() as s:
            content = visible_content(s, content_id)
            audit(s, "content.speak", "content", content_id,
                  {"outcome": outcome, "force": force, "provider": (content.speech or {}).get("provider")},
                  areas=[content.area_code] if content.area_code else None)
            return with_etag(content)


@blp.route("/<string:content_id>/versions")
class ContentVersions(MethodView):
    @blp.response(200, ContentVersionSchema(many=True))
    @blp.fails(404)
    def get(self, content_id: str) -> list[ContentVersion]:
        """Versions of a content

        Every edit, oldest first: who, when, and what changed (field → [before, after]).
        """
        with runtime().db.session() as s:
            return editing.versions(s, visible_content(s, content_id))


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
