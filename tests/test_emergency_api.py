"""The emergency in one step through the API and the command line: the preview's scope, refusals
that name the field (and change nothing), who may fire where, firing from text or a CAP alert,
a repeated request answered once, and stopping it early."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.access.actors import LOCAL_ADMIN
from hub.api import create_app
from hub.runtime import Runtime
from hub.store.db import utcnow
from hub.store.emergency_tables import Emergency
from hub.store.models import AuditEntry, Command, Content, Delivery, Device, DeviceStatus
from tests.support.api import assert_error
from tests.support.cli import hub_cli, one_line_error
from tests.support.province import FAR, OWN, add_device, probe, stored

TEXT = "Thông báo khẩn: bão số 3 đổ bộ lúc 7 giờ 30. Bà con vào nơi trú ẩn ngay."
CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"


def cap_alert(code: str = OWN, expires: str = "2099-12-05T12:00:00+07:00", broken: str = "",
              sent: str = "2026-12-05T08:00:00+07:00") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="{CAP_NS}">
  <identifier>VN-KTTV-2026-003</identifier>
  <sender>canhbao@kttv.gov.vn</sender>
  <sent>{sent}</sent>
  <status>Actual</status>{broken}
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>vi-VN</language><category>Met</category><event>Bão số 3</event>
    <urgency>Immediate</urgency><severity>Extreme</severity><certainty>Observed</certainty>
    <expires>{expires}</expires>
    <headline>Cảnh báo bão số 3 đổ bộ</headline>
    <description>Bão số 3 đang tiến vào đất liền, gió giật cấp 12.</description>
    <instruction>Người dân ở trong nhà, tránh xa bờ sông.</instruction>
    <area><areaDesc>Phường 1</areaDesc><geocode><valueName>ADMIN_CODE</valueName><value>{code}</value></geocode></area>
  </info>
</alert>
"""


@pytest.fixture
def province(rt: Runtime, legacy_areas: None) -> Runtime:
    """In commune OWN: two speakers, a board, a disabled speaker and one known offline; in FAR
    (another district): one speaker."""
    for did, area, kind in (("spk-1", OWN, "speaker"), ("spk-2", OWN, "speaker"), ("led-1", OWN, "led_board"),
                            ("spk-dis", OWN, "speaker"), ("spk-off", OWN, "speaker"), ("spk-far", FAR, "speaker")):
        add_device(rt, did, area, kind=kind)
    with rt.db.session() as s:
        s.get(Device, "spk-dis").admin_state = "disabled"
        s.add(DeviceStatus(device_id="spk-off", online=False, operating_state="offline", state_since=utcnow(),
                           state_reason="link lost"))
    return rt


def admin(rt: Runtime):  # noqa: ANN201
    return create_app(rt, authenticator=lambda _req: LOCAL_ADMIN).test_client()


def test_preview_says_how_far_it_reaches_and_writes_nothing(province: Runtime) -> None:
    before = stored(province)
    r = admin(province).post("/api/emergency/preview", json={"text": TEXT, "target": {"areas": ["80"]}})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["preview"] is True and body["summary"] == "4 devices in 2 communes"
    assert (body["devices"], body["reaches"], body["communes"]) == (6, 4, 2)
    assert body["by_kind"] == {"led_board": {"targeted": 1, "reaches": 1}, "speaker": {"targeted": 5, "reaches": 3}}
    assert body["by_vendor"] == {"mqtt_speaker": {"targeted": 6, "reaches": 4}}
    why = {c["device_id"]: (c["state"], c["reason"]) for c in body["cannot_receive"]}
    assert why["spk-dis"] == ("failed", "device disabled by administrator")
    assert why["spk-off"][0] == "offline" and "offline since" in why["spk-off"][1] and len(why) == 2
    assert stored(province) == before  # no content, command, delivery or audit entry


BAD = [
    ({"text": "   ", "target": {"areas": [OWN]}}, "text", "empty"),
    ({}, "text", "give text"),
    ({"text": "Bão", "content_id": "c-1", "target": {"areas": [OWN]}}, "content_id", "not both"),
    ({"text": "Bão", "target": {"areas": ["99999"]}}, "target.areas", "unknown area"),
    ({"text": "Bão"}, "target", "give the areas"),
    ({"text": "Bão", "target": {"areas": [OWN]}, "expires_at": "2020-01-01T00:00:00+07:00"}, "expires_at",
     "has passed"),
    ({"content_id": "no-such", "target": {"areas": [OWN]}}, "content_id", "unknown content"),
    ({"text": "Bão", "voice": "klingon", "target": {"areas": [OWN]}}, "voice", "unknown voice"),
    ({"cap": "<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'>\n<identifier>x</identifier>\n<sent>"},
     "cap", "line 3: not well-formed"),
    ({"cap": cap_alert(broken="\n  <bogus>1</bogus>")}, "cap", "line 7: not a valid CAP 1.2 message"),
    ({"cap": cap_alert(code="99999")}, "cap", "none of them known here"),
    ({"cap": cap_alert(expires="2021-12-05T12:00:00+07:00", sent="2021-12-05T08:00:00+07:00")}, "cap",
     "has passed"),
]


@pytest.mark.parametrize("path", ["/api/emergency", "/api/emergency/preview"])
def test_bad_requests_name_the_field_and_change_nothing(province: Runtime, path: str) -> None:
    client = admin(province)
    before = stored(province)
    for body, field, says in BAD:
        r = client.post(path, json=body)
        assert_error(r, 422, "json", field, contains=says)
    assert stored(province) == before


@pytest.mark.parametrize("role,area,target,status", [
    ("operator", OWN, FAR, 403),        # outside the operator's commune
    ("operator", OWN, "80", 403),       # the whole province from a commune account
    ("administrator", FAR, OWN, 403),   # an administrator of another commune
    ("editor", OWN, OWN, 403),          # editors write bulletins; firing is sending
    ("approver", OWN, OWN, 403),
    ("viewer", OWN, OWN, 403),
])
def test_who_may_fire_where(province: Runtime, role: str, area: str, target: str, status: int) -> None:
    p = probe(province, f"{role}-{area}", [role], [area])
    before = stored(province)
    for path in ("/api/emergency/preview", "/api/emergency"):
        r = p.send("POST", path, {"text": TEXT, "target": {"areas": [target]}})
        assert r.status_code == status, (path, r.get_json())
    assert stored(province)[:-1] == before[:-1]  # only the refusals' own audit entries were added


def test_an_operator_fires_in_their_commune_and_a_stop_ends_it(province: Runtime) -> None:
    op = probe(province, "op-own", ["operator"], [OWN])
    r = op.send("POST", "/api/emergency", {"text": TEXT, "target": {"areas": [OWN]}, "idempotency_key": "k1"})
    assert r.status_code == 201, r.get_json()
    fired = r.get_json()
    assert fired["summary"] == "3 devices in 1 commune" and fired["replayed"] is False
    assert fired["speech"]["provider"] == "espeak_ng" and fired["speech"]["error"] is None
    assert fired["timings_ms"]["boards_sent"] <= fired["timings_ms"]["spoken"] <= fired["timings_ms"]["speakers_sent"]
    with province.db.session() as s:
        content = s.get(Content, fired["content_id"])
        assert (content.status, content.priority, content.kind, content.area_code) == (
            "published", "emergency", "tts_text", OWN)
        assert content.created_by == content.published_by == "op-own" and content.media["key"].endswith(".mp3")
        play, led = s.get(Command, fired["commands"]["play"]), s.get(Command, fired["commands"]["led_show"])
        assert fired["command_id"] == play.id and play.priority == led.priority == "emergency"
        assert led.params["text"] == " ".join(TEXT.split()) and play.content_id == content.id
        states = {d.device_id: d.state for d in s.scalars(select(Delivery).where(
            Delivery.command_id.in_([play.id, led.id])))}
        assert states == {"spk-1": "queued", "spk-2": "queued", "spk-off": "queued", "spk-dis": "failed",
                          "led-1": "queued"}
        entries = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "emergency.fire")))
        assert len(entries) == 1 and entries[0].actor == "op-own" and entries[0].object_id == content.id
        assert "without a second person's approval" in entries[0].detail["rule"]
    again = op.send("POST", "/api/emergency", {"text": TEXT, "target": {"areas": [OWN]}, "idempotency_key": "k1"})
    assert again.status_code == 200 and again.get_json()["replayed"] is True
    assert again.get_json()["commands"] == fired["commands"]

    stop = op.send("POST", f"/api/emergency/{fired['commands']['led_show']}/stop")
    assert stop.status_code == 200, stop.get_json()
    ended = stop.get_json()
    assert set(ended["commands"]) == {"stop", "led_clear"} and ended["devices"] == 4 and ended["stopped_by"] == "op-own"
    with province.db.session() as s:
        # the emergency's rows not yet sent gave way to the stop
        assert s.get(Command, ended["commands"]["stop"]).priority == "emergency"
        assert s.scalar(select(Delivery.state).where(Delivery.command_id == fired["commands"]["play"],
                                                     Delivery.device_id == "spk-1")) == "superseded"
        assert s.scalars(select(Emergency)).one().stopped_by == "op-own"
        assert s.scalars(select(AuditEntry).where(AuditEntry.action == "emergency.stop")).one().actor == "op-own"
    assert op.send("POST", f"/api/emergency/{fired['command_id']}/stop").status_code == 409
    assert_error(op.send("POST", "/api/emergency/nothing/stop"), 404)


def test_a_cap_alert_fires_with_its_own_areas_and_words(province: Runtime) -> None:
    r = admin(province).post("/api/emergency", json={"cap": cap_alert()})
    assert r.status_code == 201, r.get_json()
    fired = r.get_json()
    assert fired["source"] == "cap" and fired["title"] == "Cảnh báo bão số 3 đổ bộ"
    assert fired["summary"] == "3 devices in 1 commune"  # OWN's, not FAR's
    with province.db.session() as s:
        content = s.get(Content, fired["content_id"])
        assert "gió giật cấp 12" in content.body and "tránh xa bờ sông" in content.body
        assert content.origin["external_id"] == "canhbao@kttv.gov.vn,VN-KTTV-2026-003"
        assert s.get(Command, fired["commands"]["led_show"]).params["text"] == "Cảnh báo bão số 3 đổ bộ"


def test_a_published_content_is_sent_as_it_is(province: Runtime) -> None:
    client = admin(province)
    made = client.post("/api/contents", json={"title": "Lũ", "kind": "tts_text", "body": "Nước lũ lên nhanh.",
                                              "area_code": OWN, "publish": True}).get_json()
    r = client.post("/api/emergency", json={"content_id": made["id"], "target": {"areas": [OWN]},
                                            "expires_at": (utcnow() + timedelta(minutes=5)).isoformat()})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["content_id"] == made["id"] and r.get_json()["speech"] is None  # spoken when published
    draft = client.post("/api/contents", json={"title": "Nháp", "kind": "tts_text", "body": "Chưa duyệt.",
                                               "area_code": OWN}).get_json()
    refused = client.post("/api/emergency", json={"content_id": draft["id"], "target": {"areas": [OWN]}})
    assert refused.status_code == 409 and refused.get_json()["rule"] == "unpublished"
    assert "content_id" in refused.get_json()["errors"]["json"]


def test_the_command_line_previews_fires_and_fails_in_one_line(province: Runtime, config_file: Path) -> None:
    r = hub_cli(config_file, "emergency", "--text", TEXT, "--area", OWN, "--preview")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("would reach 3 devices in 1 commune") and "spk-dis" in r.stdout
    with province.db.session() as s:
        assert s.scalar(select(Command.id)) is None
    assert "--expires" in one_line_error(hub_cli(config_file, "emergency", "--text", TEXT, "--area", OWN,
                                                 "--expires", "soon"))
    assert "unknown area code 99999" in one_line_error(hub_cli(config_file, "emergency", "--text", TEXT,
                                                               "--area", "99999"))
    assert "text" in one_line_error(hub_cli(config_file, "emergency", "--text", " ", "--area", OWN))
    r = hub_cli(config_file, "emergency", "--text", TEXT, "--area", OWN, "--expires", "30m")
    assert r.returncode == 0, r.stderr
    assert "fired: 3 devices in 1 commune" in r.stdout
    with province.db.session() as s:
        em = s.scalars(select(Emergency)).one()
        assert timedelta(minutes=29) < em.expires_at - em.created_at <= timedelta(minutes=30)
        assert em.issuer.startswith("cli:")
