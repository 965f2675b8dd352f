"""Reproductions of a security probe's input findings, through the real API (accounts signed in
with API tokens) and the real `hub` command. Each test failed on the code before its fix."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.access.actors import LOCAL_ADMIN
from hub.store.models import Area, Command, Content, Device
from hub.runtime import Runtime
from tests.support.cli import hub_cli, one_line_error
from tests.support.province import FAR, OWN, VENDOR, probe, stored

LONE = "\ud800"  # a high surrogate with no low one after it: not a character
LISTS = ("/api/devices", "/api/groups", "/api/contents", "/api/commands", "/api/users", "/api/tokens",
         "/api/areas", "/api/audit")


def _in(hours: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=hours)).isoformat()


def assert_refused(r: Any, status: int, field: str, location: str = "json") -> dict[str, Any]:
    body = r.get_json()
    assert r.status_code == status, body
    assert set(body) == {"code", "status", "message", "errors"} and body["message"], body
    assert field in body["errors"][location], body
    return body


# -- 1. unpaired surrogates -----------------------------------------------------------------------
SURROGATE_WRITES = {  # kind of write: (method, url, body, the field the 422 must name)
    "device name": ("POST", "/api/devices", {"id": "spk-new", "name": f"Loa {LONE}", "vendor": VENDOR,
                                             "kind": "speaker", "area_code": OWN, "address": "addr-new"}, "name"),
    "device tag": ("POST", "/api/devices", {"id": "spk-new", "vendor": VENDOR, "kind": "speaker", "area_code": OWN,
                                            "address": "addr-new", "tags": ["chợ", f"x{LONE}"]}, "tags.1"),
    "device config key": ("PUT", "/api/devices/spk-own", {"vendor": VENDOR, "kind": "speaker", "area_code": OWN,
                                                          "address": "addr-spk-own", "config": {LONE: 1}},
                          "config.\\ud800"),
    "group name": ("POST", "/api/groups", {"id": "g-new", "name": f"Nhóm {LONE}", "area_code": OWN,
                                           "devices": ["spk-own"]}, "name"),
    "content text": ("POST", "/api/contents", {"title": "Tin", "kind": "tts_text", "body": f"Thông báo {LONE}"},
                     "body"),
    "content origin": ("POST", "/api/contents", {"title": "Tin", "kind": "tts_text", "body": "Thông báo",
                                                 "origin": {"source": "rss", "external_id": LONE}},
                       "origin.external_id"),
    "command params": ("POST", "/api/commands", {"verb": "led_show", "params": {"text": f"Mưa lớn {LONE}"},
                                                 "target": {"areas": [OWN]}}, "params.text"),
    "command idempotency key": ("POST", "/api/commands", {"verb": "stop", "idempotency_key": f"k{LONE}",
                                                          "target": {"areas": [OWN]}}, "idempotency_key"),
    "command target": ("POST", "/api/commands", {"verb": "stop", "target": {"areas": [OWN], "tags": [LONE]}},
                       "target.tags.0"),
    "user full name": ("PATCH", "/api/users/op-own", {"full_name": f"Nguyễn {LONE}"}, "full_name"),
    "new user full name": ("POST", "/api/users", {"name": "op-new", "roles": ["viewer"], "areas": [OWN],
                                                  "login": False, "full_name": LONE}, "full_name"),
    "token name": ("POST", "/api/tokens", {"user": "op-own", "name": f"ci {LONE}"}, "name"),
    "area name": ("POST", "/api/areas", {"code": "27694-T9", "name": f"Thôn {LONE}", "type": "village",
                                         "parent_code": OWN}, "name"),
    "sign-in name": ("POST", "/api/auth/login", {"name": f"admin{LONE}", "password": "x" * 16}, "name"),
}


@pytest.mark.parametrize("kind", sorted(SURROGATE_WRITES))
def test_a_lone_surrogate_is_refused_in_every_kind_of_write_and_lists_keep_answering(province: Runtime,
                                                                                      kind: str) -> None:
    rt = province
    admin = probe(rt, "admin-own", ["administrator"], [OWN])
    probe(rt, "op-own", ["operator"], [OWN])
    method, url, body, field = SURROGATE_WRITES[kind]
    before = stored(rt)
    r = admin.send(method, url, body)
    refused = assert_refused(r, 422, field)
    assert "surrogate" in refused["message"]
    assert stored(rt) == before, "a refused write stored something"
    for url in LISTS:  # everyone's lists still answer
        assert admin.send("GET", url).status_code == 200, url


def test_the_command_line_refuses_arguments_and_files_that_are_not_text(cli_ready: Path, tmp_path: Path) -> None:
    """Bytes that are not UTF-8 reach Python's argv as lone surrogates, and YAML's "\\ud800"
    escape makes one too; stored, they broke `hub users list` (and every API list) after."""
    r = hub_cli(cli_ready, "users", "add", "op-x", "--role", "viewer", "--area", OWN, "--no-login",
                "--full-name", b"Nguy\xe1n \xff")
    assert "not valid UTF-8" in one_line_error(r)
    r = hub_cli(cli_ready, "users", "list", "--json")
    assert r.returncode == 0, r.stderr
    assert "op-x" not in r.stdout
    for what, text in (("devices", f'- {{id: spk-y, vendor: {VENDOR}, kind: speaker, area_code: "{OWN}", '
                                   f'address: a-y, name: "Loa \\ud800"}}\n'),
                       ("areas", f'- {{code: {OWN}-T2, name: "Thôn \\udfff", type: village, parent_code: "{OWN}"}}\n')):
        path = tmp_path / f"{what}.yaml"
        path.write_text(text, encoding="utf-8")
        assert "name: holds an unpaired surrogate" in one_line_error(hub_cli(cli_ready, "import", what, str(path)))
    from hub.config import load_settings
    from hub.store.db import Database

    db = Database(load_settings({"HUB_CONFIG": str(cli_ready)}).database_url)
    try:
        with db.session() as s:
            assert s.get(Device, "spk-y") is None and s.get(Area, f"{OWN}-T2") is None
    finally:
        db.dispose()


# -- 2. dates out of range ------------------------------------------------------------------------
def test_out_of_range_dates_are_422_naming_the_field_never_500_nor_a_command_that_never_expires(
        province: Runtime) -> None:
    rt = province
    op = probe(rt, "op-own", ["operator", "editor", "viewer"], [OWN])
    stop = {"verb": "stop", "target": {"areas": [OWN]}}
    before = stored(rt)
    cases = [  # (body, the field at fault)
        ({**stop, "expires_at": "9999-12-31T23:59:59+00:00"}, "expires_at"),  # accepted before: never expires
        ({**stop, "expires_at": "9999-12-31T23:59:59-05:00"}, "expires_at"),  # beyond datetime in UTC
        ({**stop, "start_at": "9999-12-31T22:00:00-05:00"}, "start_at"),
        ({**stop, "start_at": "0001-01-01T00:00:00+07:00"}, "start_at"),
        ({**stop, "expires_at": _in(24 * 3)}, "expires_at"),  # beyond max_command_ttl_s (a day)
        ({**stop, "start_at": _in(2), "expires_at": _in(2 + 25)}, "expires_at"),
        ({"verb": "sync_schedule", "target": {"areas": [OWN]},
          "params": {"slots": [{"content_id": "x", "start": "9999-12-31T23:00:00-05:00"}]}}, "params"),
    ]
    for body, field in cases:
        assert_refused(op.send("POST", "/api/commands", body), 422, field)
    content = {"title": "Tin", "kind": "tts_text", "body": "Thông báo", "area_code": OWN}  # contents have an area
    for extra, field in (({"valid_until": "9999-12-31T23:59:59-05:00"}, "valid_until"),
                         ({"valid_from": "0001-01-01T00:00:00+01:00"}, "valid_from"),
                         ({"valid_until": _in(24 * 365 * 5)}, "valid_until")):  # beyond schedule_horizon_days
        assert_refused(op.send("POST", "/api/contents", {**content, **extra}), 422, field)
    assert stored(rt) == before
    for query, field in (("since=9999-12-31T23:59:59-05:00", "since"), ("until=0001-01-01T00:00:00%2B01:00", "until")):
        assert_refused(op.send("GET", f"/api/audit?{query}"), 422, field, location="query")

    # within the bounds: accepted, and the expiry is what was asked
    ok = op.send("POST", "/api/commands", {**stop, "expires_at": _in(20)})
    assert ok.status_code == 201, ok.get_json()
    assert datetime.fromisoformat(ok.get_json()["expires_at"]) > datetime.now(timezone.utc) + timedelta(hours=19)
    assert op.send("POST", "/api/contents", {**content, "valid_until": _in(24 * 30)}).status_code == 201
    assert op.send("GET", "/api/audit?since=2020-01-01T00:00:00Z").status_code == 200


def test_the_command_line_refuses_dates_beyond_the_bounds_in_one_line(cli_ready: Path) -> None:
    for seconds in ("1e12", "nan", str(3 * 86400)):
        r = hub_cli(cli_ready, "send", "stop", "--area", OWN, "--expires-in", seconds)
        assert "expires" in one_line_error(r), seconds
    for since in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"):
        assert "--since" in one_line_error(hub_cli(cli_ready, "audit", "export", "--since", since))
    assert hub_cli(cli_ready, "audit", "export", "--since", "2020-01-01T00:00:00+07:00").returncode == 0


# -- 3. LED text ----------------------------------------------------------------------------------
HOSTILE_LED_TEXT = {
    "right-to-left override": "Sơ tán \u202eáb kề",
    "isolate": "Mưa \u2067lớn\u2069",
    "zero-width space": "Bão\u200bsố 3",
    "escape sequence": "\x1b[2JBão",
    "NUL": "Bão\x00",
    "CR LF": "Dòng 1\r\nDòng 2",
    "C1 control": "Bão\x85",
    "BOM": "\ufeffBão",
    "line separator": "Bão\u2028số 3",
}


def test_led_text_with_controls_bidi_or_zero_width_characters_is_refused_and_nfc_otherwise(
        province: Runtime) -> None:
    rt = province
    op = probe(rt, "op-own", ["operator", "editor"], [OWN])
    before = stored(rt)
    for name, text in HOSTILE_LED_TEXT.items():
        body = assert_refused(op.send("POST", "/api/commands", {"verb": "led_show", "params": {"text": text},
                                                                "target": {"devices": ["led-own"]}}),
                              422, "params", )
        assert "text" in body["errors"]["json"]["params"], (name, body)
        assert_refused(op.send("POST", "/api/contents", {"title": "Tin", "kind": "led_text", "body": text}),
                       422, "body")
    assert stored(rt) == before
    # Vietnamese typed decomposed (NFD, as some keyboards do) is shown composed
    decomposed = "Tho\u0302ng ba\u0301o"
    r = op.send("POST", "/api/commands", {"verb": "led_show", "params": {"text": decomposed},
                                          "target": {"devices": ["led-own"]}})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["params"]["text"] == "Thông báo"
    made = op.send("POST", "/api/contents", {"title": "Tin", "kind": "led_text", "body": decomposed, "area_code": OWN})
    assert made.status_code == 201 and made.get_json()["body"] == "Thông báo"
    # a speaker's text is not shown on a board: the LED rule does not apply to it
    assert op.send("POST", "/api/contents", {"title": "Tin", "kind": "tts_text", "area_code": OWN,
                                             "body": "Dòng 1\nDòng 2"}).status_code == 201


@pytest.mark.parametrize("text", sorted(HOSTILE_LED_TEXT.values()))
def test_led_plugins_refuse_such_text_before_any_byte_goes_out(text: str) -> None:
    """Text that reached a plugin by another door (an old command row, a content made before the
    rule) is refused again where the bytes are built."""
    serial = pytest.importorskip("hub_serial_led.commands")
    modbus = pytest.importorskip("hub_modbus_board.commands")
    from hub.vendor import DeviceRef, Envelope

    env = Envelope(command_id=uuid.uuid4().hex, verb="led_show", params={"text": text}, priority="normal",
                   expires_at=datetime.now(timezone.utc) + timedelta(minutes=5))
    content_env = Envelope(command_id=uuid.uuid4().hex, verb="led_show", params={}, priority="normal",
                           expires_at=env.expires_at, content={"kind": "led_text", "body": text})
    caps = frozenset({"led.text", "led.text_unicode"})
    for e in (env, content_env):
        with pytest.raises(ValueError, match="LED text may not hold"):
            serial.build_request(1, DeviceRef("led-1", "serial:///dev/null#1", "led_board", capabilities=caps), e)
        with pytest.raises(modbus.CommandError, match="LED text may not hold"):
            modbus.plan(DeviceRef("led-2", "tcp://127.0.0.1:1502/1", "led_board", capabilities=caps), e,
                        modbus.FLAG_UNICODE)
    # while Vietnamese passes, composed
    fine = Envelope(command_id="c", verb="led_show", params={"text": "Tho\u0302ng ba\u0301o"}, priority="normal",
                    expires_at=env.expires_at)
    built = serial.build_request(1, DeviceRef("led-1", "serial:///dev/null#1", "led_board", capabilities=caps), fine)
    assert "Thông báo".encode() in built.frame.payload


# -- 5. no existence leaks across areas -----------------------------------------------------------
def test_refusals_do_not_reveal_devices_or_accounts_of_other_areas(province: Runtime) -> None:
    rt = province
    admin = probe(rt, "admin-own", ["administrator"], [OWN])
    wide = probe(rt, "admin-province", ["administrator"], ["80"])  # sees both districts

    def leaks(r: Any, *secrets: str) -> list[str]:
        text = json.dumps(r.get_json(), ensure_ascii=False)
        return [s for s in secrets if s in text]

    # an address held by a device of another district: 409, without that device's id
    body = {"id": "spk-probe", "vendor": VENDOR, "kind": "speaker", "area_code": OWN, "address": "line-0042"}
    r = admin.send("POST", "/api/devices", body)
    assert_refused(r, 409, "address")
    assert leaks(r, "spk-far", FAR) == [], r.get_json()
    r = admin.send("PUT", "/api/devices/spk-own", {**body, "id": "spk-own"})
    assert r.status_code == 409 and leaks(r, "spk-far") == [], r.get_json()
    # the administrator whose areas hold it is told which device it is
    assert "spk-far" in wide.send("POST", "/api/devices", body).get_json()["message"]

    # ids and names taken elsewhere: taken, but not "a device/group/user/area exists there"
    for url, payload, field in (
            ("/api/devices", {**body, "id": "spk-far", "address": "addr-new"}, "id"),
            ("/api/groups", {"id": "g-mixed", "name": "Nhóm", "area_code": OWN}, "id"),
            ("/api/users", {"name": "op-far", "roles": ["viewer"], "areas": [OWN], "login": False}, "name"),
            ("/api/areas", {"code": "28099-A1", "name": "Ấp", "type": "village", "parent_code": OWN}, "code")):
        r = admin.send("POST", url, payload)
        assert_refused(r, 409, field)
        assert "already exists" not in r.get_json()["message"] and leaks(r, "807", "/80/") == [], r.get_json()
        assert "already exists" in wide.send("POST", url, payload).get_json()["message"], url

    # a command through a group, and the cancel of a command, that reach a device elsewhere:
    # refused (403) without naming that device
    op = probe(rt, "op-own", ["operator"], [OWN])
    r = op.send("POST", "/api/commands", {"verb": "stop", "target": {"groups": ["g-mixed"]}})
    assert_refused(r, 403, "target")
    assert leaks(r, "spk-far") == [], r.get_json()
    from hub.delivery.dispatch import submit
    from hub.schemas import CommandSchema

    sub = submit(rt, LOCAL_ADMIN, CommandSchema().load({"verb": "stop", "target": {"groups": ["g-mixed"]},
                                                        "start_at": _in(1)}))
    assert op.send("GET", f"/api/commands/{sub.command.id}").status_code == 200  # it reaches op's commune
    r = op.send("POST", f"/api/commands/{sub.command.id}/cancel")
    assert_refused(r, 403, "target")
    assert leaks(r, "spk-far") == [], r.get_json()
    with rt.db.session() as s:
        assert s.get(Command, sub.command.id).cancelled_at is None
        assert s.scalars(select(Content)).all() == []


def test_a_default_ttl_beyond_the_maximum_is_a_configuration_error(tmp_path: Path) -> None:
    """Else every command sent without an expires_at would be refused."""
    from hub.config import ConfigError, load_settings

    path = tmp_path / "hub.yaml"
    path.write_text("default_ttl_s: 172800\nmax_command_ttl_s: 86400\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="default_ttl_s"):
        load_settings({"HUB_CONFIG": str(path)})
    path.write_text("default_ttl_s: 600\n", encoding="utf-8")
    assert load_settings({"HUB_CONFIG": str(path)}).max_command_ttl_s == 86400


# -- 6. integers beyond what the database holds ---------------------------------------------------
def test_every_integer_query_parameter_beyond_64_bits_is_a_422_naming_it_never_a_500(province: Runtime) -> None:
    # The API fuzzer found GET /api/audit?actor_id=<a 20-digit number> answering 500: SQLite
    # cannot bind an integer over 64 bits. Each integer parameter of every GET, from the spec.
    admin = probe(province, "admin-prov", ["administrator"], ["80"])
    spec = admin.client.get("/api/openapi.json").get_json()
    huge = str(2 ** 64)
    tried = []
    for path, ops in spec["paths"].items():
        op = ops.get("get")
        if op is None or "{" in path:
            continue
        for p in op.get("parameters", []):
            if p.get("in") == "query" and p.get("schema", {}).get("type") == "integer" \
                    and p["name"] not in ("page", "page_size"):
                r = admin.client.get(path, query_string={p["name"]: huge})
                tried.append(f"{path}?{p['name']}")
                assert r.status_code == 422, (path, p["name"], r.status_code, r.get_data(as_text=True)[:300])
                assert p["name"] in r.get_json()["errors"]["query"], r.get_json()
    assert "/api/audit?actor_id" in tried, tried
