"""The editorial workflow through the API: draft → submitted → approved → published → archived,
rejected with a reason, versions of edits, who may do what where, and that devices get only
published contents (issue 18, item 3)."""
from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.access.actors import Actor
from hub.api import create_app
from hub.runtime import Runtime
from hub.store.models import AuditEntry
from hub.testing import device_body

COMMUNE, SIBLING, DISTRICT, PROVINCE = "27694", "27697", "794", "80"
BULLETIN = {"title": "Lịch tiêm chủng", "kind": "tts_text", "body": "Thông báo lịch tiêm chủng tháng 12."}


class Person:
    """An account of some roles and areas, talking to the API."""

    def __init__(self, rt: Runtime, name: str, roles: set[str], areas: set[str] | None) -> None:
        self.actor = Actor(name=name, roles=frozenset(roles), areas=None if areas is None else frozenset(areas))
        self.client: FlaskClient = create_app(rt, authenticator=lambda _req: self.actor).test_client()

    def post(self, url: str, body: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.client.post(url, json=body, **kw)

    def act(self, cid: str, action: str, reason: str | None = None) -> Any:
        return self.post(f"/api/contents/{cid}/{action}", {"reason": reason} if reason else None)

    def write(self, area: str = COMMUNE, **extra: Any) -> str:
        r = self.post("/api/contents", {**BULLETIN, "area_code": area, **extra})
        assert r.status_code == 201, r.get_json()
        return r.get_json()["id"]


@pytest.fixture
def people(rt: Runtime, legacy_areas: None) -> dict[str, Person]:
    return {
        "editor": Person(rt, "bien-tap-xa", {"editor"}, {COMMUNE}),
        "approver": Person(rt, "duyet-huyen", {"approver"}, {DISTRICT}),
        "sibling_approver": Person(rt, "duyet-xa-ben", {"approver"}, {SIBLING}),
        "both": Person(rt, "bien-tap-duyet", {"editor", "approver"}, {COMMUNE}),
        "operator": Person(rt, "van-hanh-xa", {"operator"}, {COMMUNE}),
        "province_admin": Person(rt, "quan-tri-tinh", {"administrator"}, {PROVINCE}),
    }


def refused(r: Any, status: int, rule: str) -> str:
    body = r.get_json()
    assert r.status_code == status and body["rule"] == rule, (r.status_code, body)
    assert body["message"]
    return body["message"]


def audit_actions(rt: Runtime, cid: str) -> list[tuple[str, str]]:
    with rt.db.session() as s:
        return [(e.action, e.actor) for e in s.scalars(select(AuditEntry).where(AuditEntry.object_id == cid)
                                                       .order_by(AuditEntry.seq))]


def test_a_bulletin_goes_from_draft_to_archived_and_every_step_is_audited(rt: Runtime, people: dict) -> None:
    ed, ap = people["editor"], people["approver"]
    r = ed.post("/api/contents", {**BULLETIN, "area_code": COMMUNE})
    made = r.get_json()
    assert r.status_code == 201 and made["status"] == "draft" and made["version"] == 1 and r.headers["ETag"] == '"1"'
    cid = made["id"]
    assert ed.act(cid, "submit").get_json()["status"] == "submitted"
    approved = ap.act(cid, "approve").get_json()
    assert approved["status"] == "approved" and approved["reviewed_by"] == "duyet-huyen" and approved["reviewed_at"]
    published = ap.act(cid, "publish").get_json()
    assert published["status"] == "published" and published["published_by"] == "duyet-huyen"
    archived = ed.act(cid, "archive", "hết hiệu lực").get_json()
    assert archived["status"] == "archived" and archived["reason"] == "hết hiệu lực"
    assert audit_actions(rt, cid) == [("content.create", "bien-tap-xa"), ("content.submit", "bien-tap-xa"),
                                      ("content.approve", "duyet-huyen"), ("content.publish", "duyet-huyen"),
                                      ("content.archive", "bien-tap-xa")]


def test_out_of_order_transitions_are_refused_naming_the_rule(people: dict) -> None:
    ed, ap = people["editor"], people["approver"]
    cid = ed.write()
    assert "draft" in refused(ap.act(cid, "approve"), 409, "order")
    refused(ap.act(cid, "publish"), 409, "order")
    ed.act(cid, "submit")
    refused(ed.act(cid, "submit"), 409, "order")
    refused(ap.act(cid, "publish"), 409, "order")  # not approved yet
    ap.act(cid, "approve")
    refused(ed.client.patch(f"/api/contents/{cid}", json={"title": "Sửa sau duyệt"}), 409, "order")
    ap.act(cid, "publish")
    refused(ap.act(cid, "reject", "muộn rồi"), 409, "order")


def test_approval_outside_the_approvers_areas_is_refused(people: dict) -> None:
    ed, other = people["editor"], people["sibling_approver"]
    cid = ed.write()
    ed.act(cid, "submit")
    message = refused(other.act(cid, "approve"), 403, "area")
    assert COMMUNE not in message  # a content the approver may not read: where it belongs is not told
    assert other.client.get(f"/api/contents/{cid}").status_code == 404
    # a published province bulletin is readable below, but not a commune's to archive
    prov = people["province_admin"]
    pid = prov.write(PROVINCE, publish=True)
    assert other.client.get(f"/api/contents/{pid}").status_code == 200
    refused(other.act(pid, "archive"), 403, "area")


def test_writing_for_an_area_outside_ones_own_or_without_one_is_refused(people: dict) -> None:
    ed = people["editor"]
    refused(ed.post("/api/contents", {**BULLETIN, "area_code": SIBLING}), 403, "area")
    r = ed.post("/api/contents", BULLETIN)
    refused(r, 422, "area_required")
    assert "area_code" in r.get_json()["errors"]["json"]


def test_four_eyes_the_author_may_not_approve_their_own(people: dict) -> None:
    both, ap = people["both"], people["approver"]
    cid = both.write()
    both.act(cid, "submit")
    refused(both.act(cid, "approve"), 403, "four_eyes")
    assert ap.act(cid, "approve").status_code == 200


def test_reject_needs_a_reason_and_an_edit_makes_it_a_draft_again(rt: Runtime, people: dict) -> None:
    ed, ap = people["editor"], people["approver"]
    cid = ed.write()
    ed.act(cid, "submit")
    r = ap.act(cid, "reject")
    refused(r, 422, "reason")
    assert "reason" in r.get_json()["errors"]["json"]
    rejected = ap.act(cid, "reject", "Sai ngày tiêm").get_json()
    assert rejected["status"] == "rejected" and rejected["reason"] == "Sai ngày tiêm"
    edited = ed.client.patch(f"/api/contents/{cid}", json={"body": "Lịch tiêm ngày 12/12.", "version": 1})
    assert edited.status_code == 200 and edited.get_json()["status"] == "draft", edited.get_json()
    assert ed.act(cid, "submit").get_json()["reason"] is None
    assert [a for a, _ in audit_actions(rt, cid)] == ["content.create", "content.submit", "content.reject",
                                                       "content.edit", "content.submit"]  # refusals change nothing


def test_versions_record_who_when_and_what_changed(people: dict) -> None:
    ed = people["editor"]
    cid = ed.write()
    r = ed.client.patch(f"/api/contents/{cid}", json={"title": "Lịch tiêm chủng (sửa)", "note": "chính tả"},
                        headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.get_json()["version"] == 2 and r.headers["ETag"] == '"2"'
    ed.client.patch(f"/api/contents/{cid}", json={"priority": "priority", "version": 2})
    versions = ed.client.get(f"/api/contents/{cid}/versions").get_json()
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert all(v["changed_by"] == "bien-tap-xa" and v["changed_at"] for v in versions)
    assert versions[0]["changes"]["title"] == [None, "Lịch tiêm chủng"]
    assert versions[1]["changes"] == {"title": ["Lịch tiêm chủng", "Lịch tiêm chủng (sửa)"]}
    assert versions[1]["note"] == "chính tả"
    assert versions[2]["changes"] == {"priority": ["normal", "priority"]}


def test_a_stale_edit_is_refused(people: dict) -> None:
    ed = people["editor"]
    cid = ed.write()
    assert ed.client.patch(f"/api/contents/{cid}", json={"title": "A", "version": 1}).status_code == 200
    refused(ed.client.patch(f"/api/contents/{cid}", json={"title": "B", "version": 1}), 409, "stale")
    refused(ed.client.patch(f"/api/contents/{cid}", json={"title": "B"}, headers={"If-Match": '"1"'}), 409, "stale")
    assert ed.client.get(f"/api/contents/{cid}").get_json()["title"] == "A"


def test_an_operator_cannot_send_a_draft_only_a_published_content(rt: Runtime, people: dict,
                                                                   vendors: dict[str, str]) -> None:
    admin = Person(rt, "local", {"administrator"}, None)
    assert admin.post("/api/devices", device_body(vendors, "spk-1", "speaker", COMMUNE)).status_code == 201
    ed, ap, op = people["editor"], people["approver"], people["operator"]
    cid = ed.write()
    play = {"verb": "play", "content_id": cid, "target": {"areas": [COMMUNE]}}
    for step in (None, "submit", "approve"):
        if step:
            (ed if step == "submit" else ap).act(cid, step)
        r = op.post("/api/commands", play)
        assert "published" in refused(r, 409, "unpublished")
        assert "content_id" in r.get_json()["errors"]["json"]
    ap.act(cid, "publish")
    assert op.post("/api/commands", play).status_code == 201
    ed.act(cid, "archive")
    refused(op.post("/api/commands", play), 409, "unpublished")


def test_a_province_administrator_approves_and_publishes_in_one_step(rt: Runtime, people: dict) -> None:
    ed, prov, ap = people["editor"], people["province_admin"], people["approver"]
    cid = ed.write(priority="emergency")
    assert ap.act(cid, "approve_and_publish").status_code == 403  # approvers take two steps
    done = prov.act(cid, "approve_and_publish").get_json()
    assert done["status"] == "published" and done["reviewed_by"] == done["published_by"] == "quan-tri-tinh"
    assert ("content.approve_and_publish", "quan-tri-tinh") in audit_actions(rt, cid)
    # and at creation, for an emergency written by the administrator
    r = prov.post("/api/contents", {**BULLETIN, "area_code": PROVINCE, "publish": True})
    assert r.get_json()["status"] == "published"
    assert [a for a, _ in audit_actions(rt, r.get_json()["id"])] == ["content.create", "content.approve_and_publish"]
    # an editor may not take the emergency path
    assert ed.post("/api/contents", {**BULLETIN, "area_code": COMMUNE, "publish": True}).status_code == 403


def test_reads_are_filtered_by_area_and_the_list_filters_by_status_and_area(people: dict) -> None:
    ed, prov = people["editor"], people["province_admin"]
    mine = ed.write()
    sibling = Person(ed.client.application.extensions["hub.runtime"], "bien-tap-xa-ben", {"editor"}, {SIBLING})
    theirs = sibling.write(SIBLING)
    prov_draft = prov.write(PROVINCE)
    prov_out = prov.write(PROVINCE, publish=True)
    seen = {c["id"] for c in ed.client.get("/api/contents").get_json()}
    assert mine in seen and prov_out in seen and theirs not in seen and prov_draft not in seen
    assert {c["id"] for c in ed.client.get("/api/contents?status=published").get_json()} == {prov_out}
    assert [c["id"] for c in prov.client.get(f"/api/contents?area={SIBLING}").get_json()] == [theirs]
    assert prov.client.get("/api/contents?status=nope").status_code == 422
