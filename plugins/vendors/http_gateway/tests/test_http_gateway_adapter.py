"""The adapter against a simulated gateway: batching, packets, and every way a request fails."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from hub.vendor import Outcome, Result

from hub_http_gateway.adapter import HttpGatewayAdapter
from hub_http_gateway.protocol import PacketType
from hub_http_gateway.simulator import GatewaySim
from http_gateway_helpers import CannedServer, envelope, free_port, ids, outgoing

MakeSim = Callable[..., GatewaySim]
MakeAdapter = Callable[..., HttpGatewayAdapter]

AUDIO = {"id": "c-42", "kind": "audio_file", "title": "Bản tin bão số 3", "media_uri": "https://cdn.example.vn/c42.mp3",
         "duration_s": 95.0, "body": None, "language": "vi", "sha256": None}


STOP = envelope("stop", expires_in_s=86400.0)  # one envelope, as a job hands its items; made at import, so it must outlive a slow run


def by_id(results: list[Result]) -> dict[str, Result]:
    return {r.device_id: r for r in results}


def test_one_request_per_batch_limit_devices(make_sim: MakeSim, make_adapter: MakeAdapter) -> None:
    sim = make_sim(ids(250))
    adapter = make_adapter(sim, batch_limit=100)
    env = envelope("set_volume", {"level": 70})
    results = adapter.send([outgoing(a, env) for a in ids(250)])
    assert len(results) == 250 and {r.outcome for r in results} == {Outcome.ACKED}
    assert results[0].detail == {"volume": 67, "activity": "idle"}
    reqs = sim.batch_requests()
    assert len(reqs) == math.ceil(250 / 100)
    assert sorted(len(r.devices) for r in reqs) == [50, 100, 100]
    assert all(r.authorized and r.packet_type == PacketType.VOLUME and r.command_id == env.command_id for r in reqs)
    assert len({r.request_id for r in reqs}) == 3
    dev = sim.device("GW00250")
    assert dev.volume == 7 and dev.commands[-1]["data"] == {"volume": 7}


def test_items_are_grouped_by_envelope(make_sim: MakeSim, make_adapter: MakeAdapter) -> None:
    sim = make_sim(ids(4))
    adapter = make_adapter(sim)
    loud, quiet = envelope("set_volume", {"level": 100}), envelope("set_volume", {"level": 0})
    batch = [outgoing("GW00001", loud), outgoing("GW00002", quiet), outgoing("GW00003", loud),
             outgoing("GW00004", quiet)]
    assert {r.outcome for r in adapter.send(batch)} == {Outcome.ACKED}
    assert sorted(r.devices for r in sim.batch_requests()) == [("GW00001", "GW00003"), ("GW00002", "GW00004")]
    assert [sim.device(a).volume for a in ids(4)] == [10, 1, 10, 1]


@pytest.mark.parametrize(("verb", "params", "content", "packet", "data"), [
    ("play", {"repeat": 2, "volume": 40}, AUDIO, PacketType.PLAY_NOW,
     {"url": AUDIO["media_uri"], "repeat": 2, "volume": 5, "content_id": "c-42", "title": "Bản tin bão số 3",
      "duration_s": 95.0}),
    ("play", {}, {**AUDIO, "kind": "stream", "media_uri": "icecast://radio.example.vn/vov1"},
     PacketType.RELAY_START, {"url": "icecast://radio.example.vn/vov1"}),
    ("stop", {}, None, PacketType.STOP, {}),
    ("relay_start", {"url": "rtsp://10.0.0.9/live"}, None, PacketType.RELAY_START, {"url": "rtsp://10.0.0.9/live"}),
    ("relay_stop", {}, None, PacketType.RELAY_STOP, {}),
])
def test_verbs_become_packets(make_sim: MakeSim, make_adapter: MakeAdapter, verb: str, params: dict[str, Any],
                              content: dict[str, Any] | None, packet: PacketType, data: dict[str, Any]) -> None:
    sim = make_sim(["GW1"])
    results = make_adapter(sim).send([outgoing("GW1", envelope(verb, params, content=content))])
    assert results[0].outcome is Outcome.ACKED, results[0].reason
    last = sim.device("GW1").commands[-1]
    assert last["packet_type"] == packet and last["data"] == data


def test_play_acts_on_the_device(make_sim: MakeSim, make_adapter: MakeAdapter) -> None:
    sim = make_sim(["GW1"])
    result = make_adapter(sim).send([outgoing("GW1", envelope("play", {}, content=AUDIO))])[0]
    assert result.detail == {"volume": 44, "activity": "playing"}
    dev = sim.device("GW1")
    assert dev.audio_out_state == 1 and dev.source == AUDIO["media_uri"]


def test_commands_the_gateway_cannot_carry_fail_for_good_without_a_request(make_sim: MakeSim,
                                                                           make_adapter: MakeAdapter) -> None:
    sim = make_sim(["GW1", "GW2"])
    adapter = make_adapter(sim)
    no_media = envelope("play", {}, content={**AUDIO, "kind": "tts_text", "media_uri": None})
    led = envelope("led_show", {"text": "Thông báo"})
    results = adapter.send([outgoing("GW1", no_media), outgoing("GW2", led), outgoing("bad\nid", envelope("stop"))])
    assert all(r.outcome is Outcome.FAILED and not r.transient for r in results)
    got = by_id(results)
    assert "no media URI" in got["dev-GW1"].reason
    assert "led_show" in got["dev-GW2"].reason
    assert "control characters" in got["dev-bad\nid"].reason
    assert sim.batch_requests() == []


def test_device_level_errors_fail_only_their_devices(make_sim: MakeSim, make_adapter: MakeAdapter) -> None:
    sim = make_sim(["GW1", "GW2"], offline=["GW2"])
    results = by_id(make_adapter(sim).send([outgoing(a, STOP) for a in ("GW1", "GW2", "GW9")]))
    assert results["dev-GW1"].outcome is Outcome.ACKED
    assert results["dev-GW2"] == Result("dev-GW2", Outcome.FAILED, reason="device offline (gateway code 1)")
    assert results["dev-GW9"] == Result("dev-GW9", Outcome.FAILED, reason="unknown device (gateway code 2)")
    assert len(sim.batch_requests()) == 1


def test_an_expired_command_is_refused_by_the_gateway(make_sim: MakeSim, make_adapter: MakeAdapter) -> None:
    sim = make_sim(["GW1"])
    result = make_adapter(sim).send([outgoing("GW1", envelope("stop", expires_in_s=-5))])[0]
    assert result.outcome is Outcome.FAILED and not result.transient and "expired" in result.reason


def test_http_500_is_transient_and_later_requests_are_still_made(make_sim: MakeSim,
                                                                 make_adapter: MakeAdapter) -> None:
    sim = make_sim(ids(4), fail_next_n=1)
    results = make_adapter(sim, batch_limit=2).send([outgoing(a, STOP) for a in ids(4)])
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    assert len(failed) == 2 and all(r.transient and "HTTP 500" in r.reason for r in failed)
    assert "simulated" in failed[0].reason  # the gateway's own error text is kept
    assert len([r for r in results if r.outcome is Outcome.ACKED]) == 2
    assert [r.status for r in sim.batch_requests()] == [500, 200]


def test_a_timeout_is_transient_and_spares_the_rest_of_the_batch(make_sim: MakeSim,
                                                                 make_adapter: MakeAdapter) -> None:
    sim = make_sim(ids(6), delay_s=5.0)
    results = make_adapter(sim, batch_limit=2, timeout_s=0.3).send([outgoing(a, STOP) for a in ids(6)])
    assert all(r.outcome is Outcome.FAILED and r.transient and "timed out after 0.3s" in r.reason for r in results)
    first = [r for r in results if "not sent" not in r.reason]
    assert len(first) == 2  # one request tried; the other two chunks were not worth a timeout each


def test_connection_refused_is_transient(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(base_url=f"http://127.0.0.1:{free_port()}", api_key="k")
    result = adapter.send([outgoing("GW1", envelope("stop"))])[0]
    assert result.outcome is Outcome.FAILED and result.transient and "unreachable" in result.reason


def test_a_wrong_api_key_fails_for_good(make_sim: MakeSim, make_adapter: MakeAdapter) -> None:
    sim = make_sim(ids(4))
    results = make_adapter(sim, api_key="not-the-key", batch_limit=2).send([outgoing(a, STOP) for a in ids(4)])
    assert all(r.outcome is Outcome.FAILED and not r.transient for r in results)
    assert all("gateway refused the API key" in r.reason and "HTTP 401" in r.reason for r in results)
    assert "not-the-key" not in results[0].reason
    assert len(sim.requests) == 1  # the second chunk would have been refused the same way


def test_accept_without_key_fault_lets_anyone_in(make_sim: MakeSim, make_adapter: MakeAdapter) -> None:
    sim = make_sim(["GW1"], accept_without_key=True)
    result = make_adapter(sim, api_key="anything").send([outgoing("GW1", envelope("stop"))])[0]
    assert result.outcome is Outcome.ACKED
    assert sim.batch_requests()[0].authorized is False


def test_a_missing_result_is_transient(make_sim: MakeSim, make_adapter: MakeAdapter,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    sim = make_sim(["GW1", "GW2"])
    real = sim.handle_batch

    def drop_gw2(req: dict[str, Any]) -> dict[str, Any]:
        body = real(req)
        body["results"] = [r for r in body["results"] if r["device"] != "GW2"]
        return body

    monkeypatch.setattr(sim, "handle_batch", drop_gw2)
    results = by_id(make_adapter(sim).send([outgoing(a, STOP) for a in ("GW1", "GW2")]))
    assert results["dev-GW1"].outcome is Outcome.ACKED
    assert results["dev-GW2"].transient and "no result for device GW2" in results["dev-GW2"].reason


def test_odd_results(make_sim: MakeSim, make_adapter: MakeAdapter, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = make_sim(["GW1", "GW2", "GW3"])
    real = sim.handle_batch

    def odd(req: dict[str, Any]) -> dict[str, Any]:
        body = real(req)
        for r in body["results"]:
            if r["device"] == "GW1":
                r["state"] = {"volume": 11}  # acted, but the read-back is off the scale
            elif r["device"] == "GW2":
                r["command_id"] = "someone-else"
            else:
                r["code"] = "zero"
        return body

    monkeypatch.setattr(sim, "handle_batch", odd)
    results = by_id(make_adapter(sim).send([outgoing(a, STOP) for a in ("GW1", "GW2", "GW3")]))
    assert results["dev-GW1"].outcome is Outcome.ACKED and "volume 11" in results["dev-GW1"].detail["unreadable_state"]
    assert results["dev-GW2"].transient and "someone-else" in results["dev-GW2"].reason
    assert results["dev-GW3"].transient and "code must be an integer" in results["dev-GW3"].reason


@pytest.mark.parametrize(("status", "body", "headers", "transient", "words"), [
    (200, b"<html>maintenance</html>", {}, True, "not JSON"),
    (200, b'{"ok": true}', {}, True, "no results list"),
    (503, b'{"error": "upstream busy"}', {}, True, "HTTP 503 to POST /api/v1/batch: upstream busy"),
    (400, b'{"error": "packet_type 9 unknown"}', {}, False, "rejected POST /api/v1/batch with HTTP 400: packet_type"),
    (413, b"too big", {}, False, "HTTP 413"),
    (302, b"", {"Location": "http://127.0.0.1:9/elsewhere"}, False, "redirects are not followed"),
    (403, b"", {}, False, "gateway refused the API key"),
])
def test_gateway_answers_map_to_outcomes(make_adapter: MakeAdapter, status: int, body: bytes,
                                         headers: dict[str, str], transient: bool, words: str) -> None:
    with CannedServer(status, body, headers) as srv:
        result = make_adapter(base_url=srv.url, api_key="k").send([outgoing("GW1", envelope("stop"))])[0]
        assert srv.hits == ["POST /api/v1/batch"]  # a redirect is never followed
    assert result.outcome is Outcome.FAILED and result.transient is transient
    assert words in result.reason


def test_health_pings_the_gateway(make_sim: MakeSim, make_adapter: MakeAdapter) -> None:
    sim = make_sim(["GW1"])
    assert make_adapter(sim).health().ok
    bad = make_adapter(sim, api_key="wrong").health()
    assert not bad.ok and "API key" in bad.detail
