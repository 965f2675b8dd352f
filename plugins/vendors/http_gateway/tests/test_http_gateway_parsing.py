"""Status and result bodies -> hub forms; the 0–100 <-> 1–10 volume mapping."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from hub.schemas.status import DeviceStatusSchema
from hub.units import from_vendor_scale
from hub.vendor import StatusParseError

from hub_http_gateway.adapter import HttpGatewayAdapter
from hub_http_gateway.packets import volume_to_gateway
from hub_http_gateway.parsing import volume_from_gateway

TS = 1_725_160_000


def status(**over: Any) -> bytes:
    obj = {"device": "GW00001", "online": True, "audio_out_state": 1, "volume": 7, "rssi": -71, "network": "4G",
           "version": "2.3.1", "source": "https://cdn.example.vn/b.mp3", "ts": TS}
    obj.update(over)
    return json.dumps({k: v for k, v in obj.items() if v is not ...}).encode()


@pytest.fixture
def adapter() -> HttpGatewayAdapter:
    return HttpGatewayAdapter({})


def test_a_full_status_is_normalised(adapter: HttpGatewayAdapter) -> None:
    st = adapter.parse_status("GW00001", status())
    assert st == {"online": True, "activity": "playing", "volume": 67, "source": "https://cdn.example.vn/b.mp3",
                  "signal": {"rssi_dbm": -71, "network": "4g"}, "firmware": "2.3.1", "faults": [],
                  "reported_at": datetime.fromtimestamp(TS, tz=timezone.utc)}
    assert DeviceStatusSchema().validate({**st, "reported_at": st["reported_at"].isoformat()}) == {}


def test_a_sparse_status_is_accepted(adapter: HttpGatewayAdapter) -> None:
    st = adapter.parse_status("GW00001", status(online=0, audio_out_state=0, volume=None, rssi=None, network=...,
                                                version=..., source=..., extra_field="ignored"))
    assert st["online"] is False and st["activity"] == "idle" and st["volume"] is None and st["signal"] is None


@pytest.mark.parametrize(("payload", "words"), [
    (b"", "empty"),
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "array"),
    (status(volume=11), "volume 11 is outside the gateway's 1-10 scale"),
    (status(volume=0), "volume 0"),
    (status(volume="7"), "volume '7'"),
    (status(audio_out_state=3), "audio_out_state"),
    (status(online="yes"), "online"),
    (status(ts=...), "ts"),
    (status(ts="2025-09-01T00:00:00Z"), "Unix seconds"),
    (status(ts=1e20), "ts"),
    (status(rssi=12), "rssi"),
    (status(network="lora"), "network"),
    (status(version=3), "version"),
    (status(device="GW00002"), "GW00002"),
])
def test_malformed_status_says_what_is_wrong(adapter: HttpGatewayAdapter, payload: bytes, words: str) -> None:
    with pytest.raises(StatusParseError, match="GW00001") as err:
        adapter.parse_status("GW00001", payload)
    assert words in str(err.value)


def test_results_become_acks(adapter: HttpGatewayAdapter) -> None:
    ok = adapter.parse_ack("GW1", b'{"device":"GW1","command_id":"c1","code":0,"message":"ok",'
                                  b'"state":{"volume":10,"audio_out_state":2}}')
    assert ok.ok and ok.command_id == "c1" and ok.detail == {"volume": 100, "activity": "relaying"}
    bad = adapter.parse_ack("GW1", b'{"device":"GW1","command_id":"c1","code":1,"message":"device offline"}')
    assert not bad.ok and bad.reason == "device offline (gateway code 1)"
    unnamed = adapter.parse_ack("GW1", b'{"command_id":"c1","code":3,"message":null}')
    assert unnamed.reason == "expired (gateway code 3)"


@pytest.mark.parametrize(("payload", "words"), [
    (b"nope", "not JSON"),
    (b'{"code":0}', "command_id"),
    (b'{"command_id":"c","code":"0"}', "code"),
    (b'{"command_id":"c","code":0,"state":{"volume":11}}', "state.volume 11"),
    (b'{"command_id":"c","code":0,"state":[]}', "state must be an object"),
])
def test_malformed_results_say_what_is_wrong(adapter: HttpGatewayAdapter, payload: bytes, words: str) -> None:
    with pytest.raises(StatusParseError, match="GW1") as err:
        adapter.parse_ack("GW1", payload)
    assert words in str(err.value)


@pytest.mark.parametrize(("level", "step"), [(0, 1), (5, 1), (6, 2), (50, 6), (70, 7), (75, 8), (94, 9),
                                              (95, 10), (100, 10)])
def test_hub_volume_to_gateway_rounds_half_up(level: int, step: int) -> None:
    assert volume_to_gateway(level) == step


@pytest.mark.parametrize(("step", "level"), [(1, 0), (5, 44), (7, 67), (8, 78), (10, 100)])
def test_gateway_volume_to_hub(step: int, level: int) -> None:
    assert volume_from_gateway(step) == level == from_vendor_scale(step, 1, 10)


def test_volume_round_trips_are_stable() -> None:
    for step in range(1, 11):
        assert volume_to_gateway(volume_from_gateway(step)) == step
    for level in range(101):  # a read-back, sent again, lands on the same step
        step = volume_to_gateway(level)
        assert volume_to_gateway(volume_from_gateway(step)) == step
        assert abs(volume_from_gateway(step) - level) <= 6  # within half a step of 100/9
