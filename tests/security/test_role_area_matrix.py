"""Roles × areas against every write endpoint of the API, through the real accounts
authenticator (an API token per account).

The endpoints are enumerated from the app's url_map, so a new write endpoint fails
`test_every_write_endpoint_has_a_case` until it gets a case here. The expected roles are written
out below from the specification, independently of hub/access/permissions.py, which is under test.
"""
from __future__ import annotations

import functools
import io
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.access import accounts
from hub.api import create_app
from hub.access.actors import LOCAL_ADMIN
from hub.store.broadcast_tables import Programme
from hub.store.models import ApiToken, Area, AuditEntry, Command, Content, Device, Group, GroupMember, User, UserArea
from hub.store.relay_tables import RelaySession
from hub.access.permissions import ROLES, is_public
from hub.fleet.registry import upsert_device, upsert_group
from hub.store.db import utcnow
from hub.runtime import Runtime
from hub.testing import device_body

OWN, SIBLING, PARENT, OTHER_DISTRICT, PROVINCE = "27694", "27697", "794", "807", "80"
AREAS = {"own commune": OWN, "sibling commune": SIBLING, "parent district": PARENT,
         "another district": OTHER_DISTRICT, "province": PROVINCE}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

# Who may do what, from the specification: administrator everything; editor writes, submits and
# archives contents; approver approves, rejects, publishes and archives them; operator sends commands
# and manages groups; viewer writes nothing. Only an administrator approves and publishes in one step.
ADMIN = {"administrator"}
WRITER = {"administrator", "editor"}
REVIEWER = {"administrator", "approver"}
EXPECTED_ROLES: dict[tuple[str, str], set[str]] = {
    ("areas.Areas", "POST"): ADMIN,
    ("devices.Devices", "POST"): ADMIN,
    ("devices.DeviceById", "PUT"): ADMIN,
    ("devices.DeviceById", "PATCH"): ADMIN,
    ("devices.DeviceById", "DELETE"): ADMIN,
    ("groups.Groups", "POST"): {"administrator", "operator"},
    ("groups.GroupById", "PUT"): {"administrator", "operator"},
    ("groups.GroupById", "DELETE"): {"administrator", "operator"},
    ("contents.Contents", "POST"): WRITER,
    ("contents.ContentById", "PATCH"): WRITER,
    ("content_workflow.ContentSubmit", "POST"): WRITER,
    ("content_workflow.ContentApprove", "POST"): REVIEWER,
    ("content_workflow.ContentReject", "POST"): REVIEWER,
    ("content_workflow.ContentPublish", "POST"): REVIEWER,
    ("content_workflow.ContentApproveAndPublish", "POST"): ADMIN,
    ("content_workflow.ContentArchive", "POST"): WRITER | REVIEWER,
    ("content_workflow.ContentSpeak", "POST"): REVIEWER,
    ("media.MediaUpload", "POST"): WRITER,
    ("commands.Commands", "POST"): {"administrator", "operator"},
    ("commands.CommandCancel", "POST"): {"administrator", "operator"},
    ("users.Users", "POST"): ADMIN,
    ("users.UserByName", "PATCH"): ADMIN,
    ("users.UserByName", "DELETE"): ADMIN,
    ("users.UserPassword", "POST"): ADMIN,
    ("users.UserLockout", "DELETE"): ADMIN,
    ("users.Tokens", "POST"): ADMIN,
    ("users.TokenById", "DELETE"): ADMIN,
    ("sources.poll_source", "POST"): ADMIN,
    ("sources.test_source", "POST"): ADMIN,
    ("outputs.replay_dead_letters", "POST"): ADMIN,
    ("relays.Relays", "POST"): {"administrator", "operator"},
    ("relays.RelayById", "DELETE"): {"administrator", "operator"},
    # the emergency in one step: whoever sends commands fires it (editors and approvers send nothing)
    ("emergency.Emergency", "POST"): {"administrator", "operator"},
    ("emergency.EmergencyStop", "POST"): {"administrator", "operator"},
    ("programmes.Programmes", "POST"): {"administrator", "operator"},
    ("programmes.ProgrammeById", "PATCH"): {"administrator", "operator"},
    ("programmes.ProgrammeById", "DELETE"): {"administrator", "operator"},
    ("programmes.ProgrammeImport", "POST"): {"administrator", "operator"},
}
# Not area-scoped, so outside the matrix, each for a stated reason and tested elsewhere.
SELF_SERVICE = {("auth.Login", "POST"): "the door in: public (test_accounts.py)",
                ("auth.Logout", "POST"): "ends the caller's own session (test_accounts.py)",
                ("auth.Password", "POST"): "changes the caller's own password (test_accounts.py)"}
# The console's forms answer browser sessions only: an API token (this matrix's credentials) is refused
# whatever its roles, and the forms call the same code as the API's cases above (dispatch.submit,
# accounts.create_token/revoke_token). Their roles and areas are tested through sessions in
# tests/console/test_console_access.py.
CONSOLE_FORMS = {("console.login", "POST"): "the door in: public (test_console_access.py)",
                 ("console.logout", "POST"): "ends the caller's own session (test_console_access.py)",
                 ("console_commands.new_command", "POST"): "dispatch.submit as commands.Commands POST "
                                                           "(test_console_access.py: roles × areas)",
                 ("console_emergency.emergency_form", "POST"): "emergency.preview/fire as emergency.Emergency "
                                                               "POST (test_console_emergency.py: roles × areas)",
                 ("console_contents.new_content", "POST"): "editing.create as contents.Contents POST "
                                                           "(test_console_contents.py: roles × areas)",
                 ("console_contents.content_action", "POST"): "editing.transition as content_workflow's views "
                                                              "(test_console_contents.py: roles × areas, four eyes)",
                 ("console_emergency.stop_emergency", "POST"): "emergency.stop as emergency.EmergencyStop POST "
                                                               "(test_console_emergency.py: roles × areas)",
                 ("console_relay.start_relay", "POST"): "relay sessions.start_session as relays.Relays POST "
                                                       "(test_console_relay.py: roles × areas)",
                 ("console_relay.stop_relay", "POST"): "relay sessions.stop_session as relays.RelayById DELETE "
                                                      "(test_console_relay.py: roles × areas)",
                 ("console_tokens.tokens", "POST"): "the caller's own tokens (test_console_access.py)",
                 ("console_tokens.revoke", "POST"): "the caller's own tokens (test_console_access.py)"}
# Every content write is area-scoped (contents belong to an area since the editorial workflow).
# Sources are the hub's own configuration (a file on its host), not an area's: polling one now or
# trying a configuration touches no area.
AREALESS: set[tuple[str, str]] = {("sources.poll_source", "POST"), ("sources.test_source", "POST"),
                                   ("outputs.replay_dead_letters", "POST")}  # the province's own configuration
# POSTs that change nothing: checked for role and area the same way, but not audited (nothing to audit).
DRY_RUNS = {("emergency.EmergencyPreview", "POST"): "a dry run of the emergency; its role and area refusals are "
                                                    "tested in test_emergency_api.py::test_who_may_fire_where"}


def write_endpoints(app: Flask) -> set[tuple[str, str]]:
    return {(rule.endpoint, m) for rule in app.url_map.iter_rules() for m in rule.methods & WRITE_METHODS}


@dataclass
class World:
    rt: Runtime
    vendor: str
    counter: itertools.count

    def n(self) -> str:
        return str(next(self.counter))

    def device(self, area: str) -> str:
        did = f"d-{self.n()}"
        with self.rt.db.session() as s:
            upsert_device(s, self.rt.plugins, {"id": did, "vendor": self.vendor, "kind": "speaker", "area_code": area,
                                               "address": f"a-{did}", "tags": []})
        return did

    def group(self, area: str) -> tuple[str, str]:
        did, gid = self.device(area), f"g-{self.n()}"
        with self.rt.db.session() as s:
            upsert_group(s, {"id": gid, "name": "Nhóm", "area_code": area, "devices": [did]})
        return gid, did

    def user(self, area: str) -> str:
        name = f"u-{self.n()}"
        with self.rt.db.session() as s:
            accounts.create_user(s, LOCAL_ADMIN, name, ["viewer"], [area], login=False)
        return name

    def content(self, area: str, status: str = "draft") -> str:
        """A content of `area` in `status`, written by someone else (so four eyes never refuse)."""
        with self.rt.db.session() as s:
            cid = f"c-{self.n()}"
            s.add(Content(id=cid, title="Lịch cắt điện", kind="tts_text", body="Thông báo.", area_code=area,
                          status=status, version=1, created_by="someone-else", created_at=utcnow()))
        return cid

    def token(self, area: str) -> int:
        name = self.user(area)
        with self.rt.db.session() as s:
            token, _ = accounts.create_token(s, LOCAL_ADMIN, accounts.get_user(s, name), "probe")
            return token.id


Request = tuple[str, str, dict[str, Any] | None]


def _put_device(w: World, a: str) -> Request:
    d = w.device(a)
    return "PUT", f"/api/devices/{d}", {**device_body({"speaker": w.vendor}, d, "speaker", a), "address": f"a-{d}",
                                        "name": "Loa đổi tên"}


def _put_group(w: World, a: str) -> Request:
    gid, did = w.group(a)
    return "PUT", f"/api/groups/{gid}", {"name": "Nhóm mới", "area_code": a, "devices": [did]}


def _command(w: World, a: str) -> Request:
    w.device(a)  # so that the area's target selects something
    return "POST", "/api/commands", {"verb": "stop", "target": {"areas": [a]}}


def _cancel(w: World, a: str) -> Request:
    """A command scheduled an hour ahead for the area's device, then its cancel."""
    from datetime import timedelta

    from hub.store.db import utcnow
    from hub.delivery.dispatch import submit
    from hub.schemas import CommandSchema

    w.device(a)
    sub = submit(w.rt, LOCAL_ADMIN, CommandSchema().load({
        "verb": "stop", "target": {"areas": [a]}, "start_at": (utcnow() + timedelta(hours=1)).isoformat()}))
    return "POST", f"/api/commands/{sub.command.id}/cancel", None


EMERGENCY_TEXT = "Thông báo khẩn: nước lũ lên nhanh, bà con di dời ngay."


def _emergency(w: World, a: str) -> Request:
    w.device(a)  # so that the area's target selects something
    return "POST", "/api/emergency", {"text": EMERGENCY_TEXT, "target": {"areas": [a]}}


def _stop_emergency(w: World, a: str) -> Request:
    """An emergency fired at the area by the local administrator, then its stop."""
    from hub.broadcast.emergency import fire

    w.device(a)
    answer, _ = fire(w.rt, LOCAL_ADMIN, {"text": EMERGENCY_TEXT, "target": {"areas": [a]}})
    return "POST", f"/api/emergency/{answer['command_id']}/stop", None


def _poll_source(w: World, a: str) -> Request:
    """A configured source (the test json_feed plugin, at an address nothing answers), polled on demand."""
    import sys

    from tests.support.sources import SOURCE_KINDS, entry, register_json_feed, write_sources

    if "json_feed" not in w.rt.plugins.sources():
        sys.path.insert(0, str(SOURCE_KINDS))
        try:
            register_json_feed(w.rt.plugins)
        finally:  # its dist-info must not make later tests' entry-point scans find it
            sys.path.remove(str(SOURCE_KINDS))
        path = Path(w.rt.settings.state_dir) / "sources.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_sources(path, entry("probe", "http://127.0.0.1:9/none"))
        w.rt.settings.sources_file = str(path)
    return "POST", "/api/sources/probe/poll", None


def _replay_dead_letters(w: World, a: str) -> Request:
    """An event-stream output in the outputs file (a webhook nothing answers), its dead letters replayed."""
    from tests.support.outputs import write_outputs

    path = Path(w.rt.settings.state_dir) / "outputs.yaml"
    if w.rt.settings.outputs_file != str(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_outputs(path, {"name": "ioc", "plugin": "event_webhooks", "config": {"webhooks": [
            {"name": "ioc", "url": "http://127.0.0.1:9/hooks", "secret": "matrix-secret-0123456789"}]}})
        w.rt.settings.outputs_file = str(path)
    return "POST", "/api/outputs/ioc/dead-letters/replay", {"all": True}


def _relay_stop(w: World, a: str) -> Request:
    """A live session on the area's device, started by an administrator, then its stop."""
    from hub.broadcast.relay.sessions import start_session

    w.device(a)
    row, _ = start_session(w.rt, LOCAL_ADMIN, {"live": True, "target": {"areas": [a]}})
    return "DELETE", f"/api/relays/{row.id}", None
def _programme_body(w: World, a: str) -> dict[str, Any]:
    """A one-off slot of its own hour, days ahead (no two cases overlap, none is made into a command
    by the save), playing a published content on the area's device."""
    from datetime import timedelta

    from hub.broadcast.programmes import LOCAL_TZ
    from tests.support.programmes import calendar, event

    w.device(a)
    at = (utcnow() + timedelta(days=3, hours=int(w.n()))).astimezone(LOCAL_TZ).replace(minute=0, second=0,
                                                                                       microsecond=0, tzinfo=None)
    return {"name": "Thời sự", "ical": calendar(event(f"e{w.n()}", at)), "target": {"areas": [a]},
            "content_id": w.content(a, "published")}


def _programme(w: World, a: str) -> str:
    from hub.broadcast import editing

    return editing.create(w.rt, LOCAL_ADMIN, _programme_body(w, a)).programmes[0].id


def _import(w: World, a: str) -> Request:
    b = _programme_body(w, a)
    return "POST", "/api/programmes/import", {"ics": b["ical"], "common": {"target": b["target"],
                                                                           "content_id": b["content_id"]}}


MULTIPART = "multipart"  # a case body {MULTIPART: form} is sent as multipart/form-data, not JSON


@functools.cache
def _audio() -> bytes:
    from tests.support.media import make_audio

    return make_audio(0.5)


CASES: dict[tuple[str, str], Callable[[World, str], Request]] = {
    ("areas.Areas", "POST"): lambda w, a: (
        "POST", "/api/areas", {"code": f"v-{w.n()}", "name": "Thôn", "type": "village", "parent_code": a}),
    ("devices.Devices", "POST"): lambda w, a: (
        "POST", "/api/devices", device_body({"speaker": w.vendor}, f"d-{w.n()}", "speaker", a)),
    ("devices.DeviceById", "PUT"): _put_device,
    ("devices.DeviceById", "PATCH"): lambda w, a: (
        "PATCH", f"/api/devices/{w.device(a)}", {"admin_state": "disabled"}),
    ("devices.DeviceById", "DELETE"): lambda w, a: ("DELETE", f"/api/devices/{w.device(a)}", None),
    ("groups.Groups", "POST"): lambda w, a: (
        "POST", "/api/groups", {"id": f"g-{w.n()}", "name": "Nhóm chợ", "area_code": a, "devices": [w.device(a)]}),
    ("groups.GroupById", "PUT"): _put_group,
    ("groups.GroupById", "DELETE"): lambda w, a: ("DELETE", f"/api/groups/{w.group(a)[0]}", None),
    ("contents.Contents", "POST"): lambda w, a: (
        "POST", "/api/contents", {"title": "Lịch cắt điện", "kind": "tts_text", "body": "Thông báo lịch cắt điện.",
                                  "area_code": a}),
    ("contents.ContentById", "PATCH"): lambda w, a: ("PATCH", f"/api/contents/{w.content(a)}", {"title": "Sửa"}),
    ("content_workflow.ContentSubmit", "POST"): lambda w, a: ("POST", f"/api/contents/{w.content(a)}/submit", None),
    ("content_workflow.ContentApprove", "POST"): lambda w, a: (
        "POST", f"/api/contents/{w.content(a, 'submitted')}/approve", None),
    ("content_workflow.ContentReject", "POST"): lambda w, a: (
        "POST", f"/api/contents/{w.content(a, 'submitted')}/reject", {"reason": "Sai ngày"}),
    ("content_workflow.ContentPublish", "POST"): lambda w, a: (
        "POST", f"/api/contents/{w.content(a, 'approved')}/publish", None),
    ("content_workflow.ContentApproveAndPublish", "POST"): lambda w, a: (
        "POST", f"/api/contents/{w.content(a, 'submitted')}/approve_and_publish", None),
    ("content_workflow.ContentArchive", "POST"): lambda w, a: (
        "POST", f"/api/contents/{w.content(a)}/archive", None),
    ("content_workflow.ContentSpeak", "POST"): lambda w, a: (
        "POST", f"/api/contents/{w.content(a, 'published')}/speak", None),
    ("media.MediaUpload", "POST"): lambda w, a: (  # an upload that makes a draft of the area
        "POST", "/api/media", {MULTIPART: {"file": (io.BytesIO(_audio()), "tin.wav"), "create_content": "true",
                                           "title": "Tin âm thanh", "area_code": a}}),
    ("commands.Commands", "POST"): _command,
    ("commands.CommandCancel", "POST"): _cancel,
    ("users.Users", "POST"): lambda w, a: (
        "POST", "/api/users", {"name": f"n-{w.n()}", "roles": ["viewer"], "areas": [a], "login": False}),
    ("users.UserByName", "PATCH"): lambda w, a: ("PATCH", f"/api/users/{w.user(a)}", {"full_name": "Cán bộ xã"}),
    ("users.UserByName", "DELETE"): lambda w, a: ("DELETE", f"/api/users/{w.user(a)}", None),
    ("users.UserPassword", "POST"): lambda w, a: ("POST", f"/api/users/{w.user(a)}/password", {}),
    ("users.UserLockout", "DELETE"): lambda w, a: ("DELETE", f"/api/users/{w.user(a)}/lockout", None),
    ("users.Tokens", "POST"): lambda w, a: ("POST", "/api/tokens", {"user": w.user(a), "name": "ci"}),
    ("users.TokenById", "DELETE"): lambda w, a: ("DELETE", f"/api/tokens/{w.token(a)}", None),
    ("sources.poll_source", "POST"): _poll_source,
    ("sources.test_source", "POST"): lambda w, a: (
        "POST", "/api/sources/test", {"name": "probe", "plugin": "none_installed", "url": "http://127.0.0.1:9/"}),
    ("outputs.replay_dead_letters", "POST"): _replay_dead_letters,
    ("relays.Relays", "POST"): lambda w, a: (
        w.device(a), ("POST", "/api/relays", {"live": True, "target": {"areas": [a]}}))[1],
    ("relays.RelayById", "DELETE"): _relay_stop,
    ("emergency.Emergency", "POST"): _emergency,
    ("emergency.EmergencyStop", "POST"): _stop_emergency,
    ("programmes.Programmes", "POST"): lambda w, a: ("POST", "/api/programmes", _programme_body(w, a)),
    ("programmes.ProgrammeById", "PATCH"): lambda w, a: (
        "PATCH", f"/api/programmes/{_programme(w, a)}", {"name": "Thời sự chiều"}),
    ("programmes.ProgrammeById", "DELETE"): lambda w, a: ("DELETE", f"/api/programmes/{_programme(w, a)}", None),
    ("programmes.ProgrammeImport", "POST"): _import,
}


@pytest.fixture
def world(rt: Runtime, legacy_areas: None, vendors: dict[str, str]) -> Iterator[World]:
    from tests.support.sources import clean_sources_queue

    yield World(rt, vendors["speaker"], itertools.count(1))
    clean_sources_queue(rt)  # the polls the source case enqueued


def client_for(rt: Runtime, role: str, area: str) -> tuple[FlaskClient, dict[str, str]]:
    with rt.db.session() as s:
        user, _ = accounts.create_user(s, LOCAL_ADMIN, f"actor-{role}", [role], [area], login=False)
        _, raw = accounts.create_token(s, LOCAL_ADMIN, user, "matrix")
    return create_app(rt).test_client(), {"Authorization": f"Bearer {raw}"}


def audit_rows(rt: Runtime) -> int:
    """Audit entries of changes: a refusal's own `access.denied` entry is not one (it is tested in
    test_identity_and_audit.py)."""
    with rt.db.session() as s:
        return s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action != "access.denied"))


def state(rt: Runtime) -> tuple[Any, ...]:
    """Everything a write endpoint could change: nothing may move on a refusal."""
    with rt.db.session() as s:
        rows = lambda *cols: sorted(tuple(map(str, r)) for r in s.execute(select(*cols)))  # noqa: E731
        return (rows(Area.code, Area.name, Area.path),
                rows(Device.id, Device.name, Device.area_code, Device.admin_state),
                rows(Group.id, Group.name, Group.area_code), rows(GroupMember.group_id, GroupMember.device_id),
                rows(Content.id, Content.title, Content.status, Content.version), rows(Command.id),
                rows(User.name, User.full_name, User.roles, User.disabled, User.password_hash),
                rows(UserArea.user_id, UserArea.area_code), rows(ApiToken.id, ApiToken.revoked_at),
                rows(RelaySession.id, RelaySession.desired), rows(Programme.id, Programme.name, Programme.revision))


def test_every_write_endpoint_has_a_case(rt: Runtime) -> None:
    endpoints = write_endpoints(create_app(rt))
    missing = endpoints - set(CASES) - set(SELF_SERVICE) - set(DRY_RUNS) - set(CONSOLE_FORMS)
    assert not missing, f"write endpoints without a role × area case in this file: {sorted(missing)}"
    assert set(CASES) <= endpoints and set(EXPECTED_ROLES) == set(CASES)


@pytest.mark.parametrize("role", ROLES)
def test_role_area_matrix_over_every_write_endpoint(world: World, role: str) -> None:
    rt = world.rt
    client, auth = client_for(rt, role, OWN)
    accepted_outside: list[str] = []
    wrong: list[str] = []
    for (endpoint, method), make in sorted(CASES.items()):
        allowed = role in EXPECTED_ROLES[(endpoint, method)]
        for label, area in AREAS.items():
            verb, url, body = make(world, area)
            assert verb == method
            before_audit, before = audit_rows(rt), state(rt)
            if body is not None and MULTIPART in body:
                r = client.open(url, method=method, data=body[MULTIPART], headers=auth,
                                content_type="multipart/form-data")
            else:
                r = client.open(url, method=method, json=body, headers=auth)
            ok = 200 <= r.status_code < 300
            where = f"{role} {method} {url} in the {label} ({area}): {r.status_code} {r.get_json(silent=True)}"
            in_area = area == OWN or (endpoint, method) in AREALESS
            if ok and not in_area:
                accepted_outside.append(where)
            elif ok != (allowed and in_area):
                wrong.append(where)
            if not ok:
                assert r.status_code in (403, 404), where  # refused for want of rights, not for a bad body
                assert r.is_json and r.get_json()["message"], where
                assert audit_rows(rt) == before_audit and state(rt) == before, f"a refusal changed something: {where}"
            else:
                assert audit_rows(rt) > before_audit, f"accepted but not audited: {where}"
    assert accepted_outside == [], "cross-area actions accepted:\n" + "\n".join(accepted_outside)
    assert wrong == [], "\n".join(wrong)


def test_every_route_needs_credentials_but_the_door_and_the_docs(rt: Runtime, legacy_areas: None) -> None:
    app = create_app(rt)
    client = app.test_client()
    adapter = app.url_map.bind("localhost")
    values = {"code": "80", "device_id": "x", "group_id": "x", "content_id": "x", "command_id": "x", "name": "x",
              "token_id": 1, "filename": "x.js", "key": "x.mp3", "relay_id": "x", "programme_id": "x"}
    checked = 0
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = adapter.build(rule.endpoint, {k: values[k] for k in rule.arguments}, method=method)
            r = client.open(url, method=method, json={} if method in WRITE_METHODS else None)
            if is_public(rule.endpoint, method):
                assert r.status_code != 401, (method, url)
                continue
            assert r.status_code == 401, (method, url, r.status_code)
            assert r.get_json()["message"] and r.headers["WWW-Authenticate"].startswith("Bearer")
            checked += 1
    assert checked >= 30
    # a role table entry exists for every authenticated route: nothing is served by omission
    from hub.access.permissions import allowed_roles

    for rule in app.url_map.iter_rules():
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert is_public(rule.endpoint, method) or allowed_roles(rule.endpoint, method), (rule.endpoint, method)


def test_a_route_without_a_rule_is_refused(rt: Runtime, legacy_areas: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.access import permissions
    from hub.access.actors import local_admin

    monkeypatch.setitem(permissions.PERMISSIONS, "health.health", {})
    r = create_app(rt, authenticator=local_admin).test_client().get("/api/health")
    assert r.status_code == 403 and "no permission rule" in r.get_json()["message"]


def test_roles_that_may_not_send_commands_are_refused_by_dispatch_too(world: World) -> None:
    """The API refuses first; dispatch refuses again for any other door (CLI, plugins)."""
    from hub.access.actors import Actor
    from hub.delivery.dispatch import DispatchError, submit
    from hub.schemas import CommandSchema

    world.device(OWN)
    for role in ("viewer", "editor", "approver"):
        with pytest.raises(DispatchError) as err:
            submit(world.rt, Actor(name=f"x-{role}", roles=frozenset({role}), areas=frozenset({OWN})),
                   CommandSchema().load({"verb": "stop", "target": {"areas": [OWN]}}))
        assert err.value.status == 403 and "may not send commands" in err.value.message
