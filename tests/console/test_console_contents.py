"""Contents through a browser session (the Flask test client, real accounts and espeak-ng): composing
a text bulletin, hearing it spoken, and the editorial workflow's steps with their refusals told as
the workflow's rule in Vietnamese."""
from __future__ import annotations

import re
from typing import Any

import pytest

from hub.api import create_app
from hub.runtime import Runtime
from hub.store.models import Content
from tests.support.accounts import make_user
from tests.support.console import HTML, PASSWORD, client_sign_in

BODY = "Thông báo lịch tiêm chủng mở rộng tại trạm y tế phường một, sáng thứ bảy tuần này."
FOUR_EYES = "người viết bản tin không được tự duyệt"


@pytest.fixture
def areas(rt: Runtime, legacy_areas: None) -> Runtime:
    return rt


def _signed_in(rt: Runtime, name: str, roles: list[str], areas: list[str]) -> tuple[Any, str]:
    make_user(rt, name, roles, areas, password=PASSWORD)
    client = create_app(rt).test_client()
    return client, client_sign_in(client, name)


def _compose(client: Any, csrf: str, area: str = "27694", title: str = "Tiêm chủng") -> Any:
    return client.post("/console/contents/new", headers=HTML,
                       data={"csrf_token": csrf, "title": title, "body": BODY, "area_code": area})


def _act(client: Any, csrf: str, cid: str, action: str, reason: str = "") -> Any:
    return client.post(f"/console/contents/{cid}/action", headers=HTML,
                       data={"csrf_token": csrf, "action": action, "reason": reason})


def _status(rt: Runtime, cid: str) -> str | None:
    with rt.db.session() as s:
        return s.get(Content, cid).status


def test_a_bulletin_goes_from_draft_to_published_through_two_people(areas: Runtime) -> None:
    editor, e_csrf = _signed_in(areas, "bien-tap-1", ["editor"], ["27694"])
    approver, a_csrf = _signed_in(areas, "duyet-1", ["approver"], ["794"])
    r = _compose(editor, e_csrf)
    assert r.status_code == 302
    cid = r.headers["Location"].rsplit("/", 1)[1]
    page = editor.get(f"/console/contents/{cid}", headers=HTML).get_data(as_text=True)
    assert "bản nháp" in page and 'id="action-submit"' in page and 'id="action-approve"' not in page
    audio = editor.get(f"/console/contents/{cid}/speech.mp3")
    assert audio.status_code == 200 and audio.mimetype == "audio/mpeg" and len(audio.data) > 2000
    assert _status(areas, cid) == "draft"
    with areas.db.session() as s:
        assert s.get(Content, cid).media is None, "hearing a draft changes nothing of it"
    assert _act(editor, e_csrf, cid, "submit").status_code == 302 and _status(areas, cid) == "submitted"
    r = _act(editor, e_csrf, cid, "approve")
    assert r.status_code == 403 and "Tài khoản của bạn không được làm bước này" in r.get_data(as_text=True)
    listed = approver.get("/console/contents?status=submitted", headers=HTML).get_data(as_text=True)
    assert f'data-content="{cid}"' in listed
    r = _act(approver, a_csrf, cid, "reject")
    assert r.status_code == 409 and "Hãy ghi lý do khi trả lại" in r.get_data(as_text=True)
    assert _act(approver, a_csrf, cid, "approve").status_code == 302 and _status(areas, cid) == "approved"
    assert _act(approver, a_csrf, cid, "publish").status_code == 302 and _status(areas, cid) == "published"
    with areas.db.session() as s:
        assert (s.get(Content, cid).media or {}).get("key"), "published: spoken for the loudspeakers"
    r = _act(approver, a_csrf, cid, "publish")
    assert r.status_code == 409 and "Bước này không phù hợp với trạng thái" in r.get_data(as_text=True)


def test_four_eyes_the_author_may_not_approve_their_own_bulletin(areas: Runtime) -> None:
    both, csrf = _signed_in(areas, "bien-tap-duyet", ["editor", "approver"], ["27694"])
    cid = _compose(both, csrf).headers["Location"].rsplit("/", 1)[1]
    _act(both, csrf, cid, "submit")
    r = _act(both, csrf, cid, "approve")
    assert r.status_code == 403 and FOUR_EYES in r.get_data(as_text=True)
    assert _status(areas, cid) == "submitted"


def test_areas_roles_and_the_csrf_token_are_checked(areas: Runtime) -> None:
    editor, csrf = _signed_in(areas, "bien-tap-2", ["editor"], ["27694"])
    r = _compose(editor, csrf, area="27697")
    assert r.status_code == 422 and "nằm ngoài địa bàn của bạn" in r.get_data(as_text=True)
    r = editor.post("/console/contents/new", headers=HTML, data={"csrf_token": csrf, "title": "", "body": "",
                                                                 "area_code": "27694"})
    assert r.status_code == 422 and "Bản tin cần có tiêu đề" in r.get_data(as_text=True)
    cid = _compose(editor, csrf).headers["Location"].rsplit("/", 1)[1]
    _act(editor, csrf, cid, "submit")
    other, o_csrf = _signed_in(areas, "duyet-27697", ["approver"], ["27697"])
    assert other.get(f"/console/contents/{cid}", headers=HTML).status_code == 404
    assert _act(other, o_csrf, cid, "approve").status_code == 404
    viewer, v_csrf = _signed_in(areas, "xem-1", ["viewer"], ["27694"])
    assert viewer.get("/console/contents/new", headers=HTML).status_code == 403
    assert _compose(viewer, v_csrf).status_code == 403
    assert _act(viewer, v_csrf, cid, "approve").status_code == 403
    approver, a_csrf = _signed_in(areas, "duyet-2", ["approver"], ["27694"])
    r = approver.post(f"/console/contents/{cid}/action", headers=HTML, data={"action": "approve"})
    assert r.status_code == 403
    assert _status(areas, cid) == "submitted", "no refused step changed it"
    assert re.search(r"bien-tap-2", approver.get("/console/contents", headers=HTML).get_data(as_text=True))
