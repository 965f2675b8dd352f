"""parse_status / parse_ack and the wire encoding, without a broker."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from hub.schemas.status import DeviceStatusSchema
from hub.vendor import StatusParseError

from hub_mqtt_speaker import protocol
from hub_mqtt_speaker.adapter import MqttSpeakerAdapter

GOOD_STATUS = {"online": True, "activity": "playing", "source": "c-42", "volume": 70, "brightness": None,
               "power": True, "signal": {"network": "4G", "rssi_dbm": -71, "quality": 80}, "faults": ["amp_hot"],
               "firmware": "2.1.0", "ts": "2025-09-01T03:04:05.250Z", "uptime_s": 1234}


@pytest.fixture
def adapter() -> MqttSpeakerAdapter:
    return MqttSpeakerAdapter({})


def _b(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_parse_status_valid(adapter: MqttSpeakerAdapter) -> None:
    st = adapter.parse_status("SPK1", _b(GOOD_STATUS))
    assert st["reported_at"] == datetime(2025, 9, 1, 3, 4, 5, 250000, tzinfo=timezone.utc)
    assert st["reported_at"].tzinfo is not None
    assert st["signal"] == {"network": "4g", "rssi_dbm": -71, "quality": 80}
    assert st["volume"] == 70 and st["activity"] == "playing" and st["faults"] == ["amp_hot"]
    assert "uptime_s" not in st and "ts" not in st  # unknown keys are dropped, not refused
    assert DeviceStatusSchema().validate(DeviceStatusSchema().dump(st)) == {}


def test_parse_status_minimal(adapter: MqttSpeakerAdapter) -> None:
    st = adapter.parse_status("SPK1", b'{"ts": "2025-09-01T03:04:05+07:00"}')
    assert st["online"] is True and st["activity"] == "unknown" and st["faults"] == []
    assert st["reported_at"].utcoffset().total_seconds() == 7 * 3600


@pytest.mark.parametrize("payload, problem", [
    (b"not json at all", "not JSON"),
    (b"", "empty"),
    (b"\xff\xfe{}", "UTF-8"),
    (b"[1, 2]", "JSON list"),
    (_b({**GOOD_STATUS, "volume": 150}), "volume"),
    (_b({**GOOD_STATUS, "volume": "loud"}), "volume"),
    (_b({k: v for k, v in GOOD_STATUS.items() if k != "ts"}), "missing ts"),
    (_b({**GOOD_STATUS, "ts": "2025-09-01T03:04:05"}), "ts"),
    (_b({**GOOD_STATUS, "ts": "yesterday"}), "ts"),
    (_b({**GOOD_STATUS, "activity": "dancing"}), "activity"),
    (_b({**GOOD_STATUS, "signal": {"network": "6g"}}), "signal.network"),
    (_b({**GOOD_STATUS, "power": "maybe"}), "power"),
])
def test_parse_status_rejects(adapter: MqttSpeakerAdapter, payload: bytes, problem: str) -> None:
    with pytest.raises(StatusParseError, match=problem) as info:
        adapter.parse_status("SPK9", payload)
    assert "SPK9" in str(info.value)


def test_parse_ack(adapter: MqttSpeakerAdapter) -> None:
    ack = adapter.parse_ack("SPK1", _b({"id": "c1", "ok": True, "error": None, "state": {"volume": 40}}))
    assert (ack.command_id, ack.ok, ack.reason, ack.detail) == ("c1", True, None, {"volume": 40})
    nack = adapter.parse_ack("SPK1", _b({"id": "c2", "ok": False, "error": "expired"}))
    assert (nack.ok, nack.reason, nack.detail) == (False, "expired", None)
    bare = adapter.parse_ack("SPK1", _b({"id": "c3", "ok": False}))
    assert bare.reason  # a failure always carries some reason


@pytest.mark.parametrize("payload, problem", [
    (b"{oops", "not JSON"),
    (b'"ok"', "JSON str"),
    (_b({"ok": True}), "id"),
    (_b({"id": "", "ok": True}), "id"),
    (_b({"id": "c1", "ok": "yes"}), "ok"),
    (_b({"id": "c1", "ok": True, "error": 5}), "error"),
    (_b({"id": "c1", "ok": True, "state": [1]}), "state"),
    (_b({"id": "c1", "ok": True, "state": {"volume": 101}}), "volume"),
])
def test_parse_ack_rejects(adapter: MqttSpeakerAdapter, payload: bytes, problem: str) -> None:
    with pytest.raises(StatusParseError, match=problem):
        adapter.parse_ack("SPK1", payload)


def test_command_payload_flattens_hub_content() -> None:
    content = {"id": "c-1", "kind": "audio_file", "title": "Bản tin", "language": "vi",
               "media": {"uri": "https://x/a.mp3", "sha256": "ab" * 32, "duration_s": 12.5}}
    expires = datetime(2030, 1, 1, tzinfo=timezone.utc)
    raw = protocol.encode(protocol.command_payload("k1", "play", {"repeat": 2}, "emergency", expires, content))
    assert "Bản tin".encode() in raw  # UTF-8 on the wire, not \u escapes
    msg = json.loads(raw)
    assert msg["expires_at"] == "2030-01-01T00:00:00.000Z"
    assert msg["content"]["media_uri"] == "https://x/a.mp3" and msg["content"]["duration_s"] == 12.5
    assert set(msg) == {"id", "verb", "params", "priority", "expires_at", "content", "sent_at"}
    assert set(msg["content"]) == set(protocol.CONTENT_FIELDS)


def test_topics_and_presence() -> None:
    assert protocol.subscription("p/q", "ack") == "p/q/+/ack"
    assert protocol.subscription("p/q", "ack", "ingest") == "$share/ingest/p/q/+/ack"
    assert protocol.split_topic("a/b/SPK1/status") == ("a/b", "SPK1", "status")
    assert protocol.decode_online(b"1") is True and protocol.decode_online(b"0") is False
    assert protocol.decode_online(b"") is None
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_online(b"maybe")
    assert protocol.address_problem("a/b") and protocol.address_problem("a+") and not protocol.address_problem("SPK1")
