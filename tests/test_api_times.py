"""Times in API answers are in the province's time zone with its offset (+07:00), whatever the
offset they were sent with; the `timezone` setting chooses the zone."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask.testing import FlaskClient

from hub.access.actors import local_admin
from hub.api import create_app
from hub.config import ConfigError, load_settings
from hub.runtime import Runtime
from tests.support.api import device_body

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)$")


def _times(node: Any, path: str = "") -> dict[str, str]:
    """Every ISO 8601 time in a JSON answer, by its dotted path."""
    if isinstance(node, dict):
        return {k: v for key, sub in node.items() for k, v in _times(sub, f"{path}.{key}").items()}
    if isinstance(node, list):
        return {k: v for i, sub in enumerate(node) for k, v in _times(sub, f"{path}.{i}").items()}
    return {path: node} if isinstance(node, str) and ISO_TIME.match(node) else {}


@pytest.fixture
def client(rt: Runtime, legacy_areas: None, vendors: dict[str, str]) -> FlaskClient:
    c = create_app(rt, authenticator=local_admin).test_client()
    assert c.post("/api/devices", json=device_body(vendors, "spk-a", "speaker", "27694")).status_code == 201
    return c


def test_every_time_in_answers_carries_the_provinces_offset(rt: Runtime, client: FlaskClient) -> None:
    start = (datetime.now(timezone.utc) + timedelta(hours=2)).replace(microsecond=0)
    sent_as = start.astimezone(timezone(timedelta(hours=-5)))  # an offset of its own: accepted, same instant
    r = client.post("/api/commands", json={"verb": "set_volume", "params": {"level": 20},
                                           "target": {"devices": ["spk-a"]}, "start_at": sent_as.isoformat()})
    assert r.status_code == 201, r.get_json()
    cmd = r.get_json()
    assert cmd["start_at"].endswith("+07:00") and datetime.fromisoformat(cmd["start_at"]) == start
    content = client.post("/api/contents", json={"title": "Lịch tiêm chủng", "kind": "led_text",
                                                 "body": "Tiêm chủng sáng thứ Bảy"}).get_json()

    answers = {"command": cmd, "commands": client.get("/api/commands").get_json(),
               "deliveries": client.get(f"/api/commands/{cmd['id']}/deliveries").get_json(),
               "device": client.get("/api/devices/spk-a").get_json(),
               "history": client.get("/api/devices/spk-a/history").get_json(),
               "content": content, "audit": client.get("/api/audit").get_json()}
    found = {f"{name}{path}": value for name, body in answers.items() for path, value in _times(body).items()}
    for key in ("command.created_at", "command.expires_at", "deliveries.0.queued_at", "device.created_at",
                "history.0.at", "content.created_at", "audit.0.at"):
        assert key in found, sorted(found)
    # An audit entry's detail is the record as it was chained (hub.access.audit), text written then: kept as is
    assert {k: v for k, v in found.items() if not v.endswith("+07:00") and ".detail." not in k} == {}


def test_the_timezone_setting_chooses_the_zone(rt: Runtime, client: FlaskClient) -> None:
    rt.settings.timezone = "Asia/Tokyo"
    body = client.get("/api/devices/spk-a").get_json()
    assert body["created_at"].endswith("+09:00")
    assert load_settings({"HUB_TIMEZONE": "Asia/Bangkok"}).timezone == "Asia/Bangkok"
    assert load_settings({}).timezone == "Asia/Ho_Chi_Minh"
    with pytest.raises(ConfigError, match="HUB_TIMEZONE"):
        load_settings({"HUB_TIMEZONE": "Mars/Olympus"})


def test_a_time_left_in_an_answer_without_schema_is_local_too(rt: Runtime, client: FlaskClient) -> None:
    """Flask's own JSON would write an HTTP date in GMT ("Sat, 05 Dec 2026 01:00:00 GMT")."""
    app = client.application
    with app.app_context():
        text = app.json.dumps({"at": datetime(2026, 12, 5, 1, 0, tzinfo=timezone.utc), "name": "Phường 1"})
    assert text == '{"at": "2026-12-05T08:00:00+07:00", "name": "Phường 1"}'
