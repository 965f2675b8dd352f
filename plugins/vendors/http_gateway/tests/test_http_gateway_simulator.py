"""The simulated gateway on its own: the protocol it speaks and its fault switches."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from hub_http_gateway import protocol
from hub_http_gateway.simulator import GatewaySim
from http_gateway_helpers import free_port, wait_until

MakeSim = Callable[..., GatewaySim]


def call(target: GatewaySim | str, method: str, path: str, body: Any = None, key: str | None = None,
         raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    base = target if isinstance(target, str) else target.url
    req = urllib.request.Request(base + path, data=data, method=method)
    if key is not None:
        req.add_header("Authorization", f"Bearer {key}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as resp:
            status, text = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def batch(devices: list[str], packet_type: int, data: dict[str, Any] | None = None, command_id: str = "c1",
          expires_at: float | None = None) -> dict[str, Any]:
    return protocol.batch_request("r1", command_id, packet_type, devices, data or {},
                                  expires_at=int(expires_at) if expires_at else None)


def test_the_api_key_is_enforced(make_sim: MakeSim, api_key: str) -> None:
    sim = make_sim(["GW1"])
    for key in (None, "wrong", api_key[:-1]):
        status, body = call(sim, "POST", protocol.BATCH_PATH, batch(["GW1"], 6), key=key)
        assert status == 401 and "API key" in body["error"]
        assert call(sim, "GET", protocol.STATUS_PATH, key=key)[0] == 401
    assert sim.device("GW1").commands == []
    assert call(sim, "GET", protocol.PING_PATH, key=api_key) == (200, {"ok": True, "devices": 1,
                                                                      "version": "sim-0.1.0"})
    with pytest.raises(ValueError, match="api_key"):
        GatewaySim(["GW1"], api_key="")


def test_accept_without_key(make_sim: MakeSim) -> None:
    sim = make_sim(["GW1"], accept_without_key=True)
    status, body = call(sim, "POST", protocol.BATCH_PATH, batch(["GW1"], 6))
    assert status == 200 and body["results"][0]["code"] == 0
    assert sim.requests[-1].authorized is False


def test_results_and_status(make_sim: MakeSim, api_key: str) -> None:
    sim = make_sim(["GW1", "GW2"], offline=["GW2"])
    status, body = call(sim, "POST", protocol.BATCH_PATH, batch(["GW1", "GW2", "GW3"], 7, {"volume": 9}), api_key)
    assert status == 200 and body["request_id"] == "r1"
    assert body["results"] == [
        {"device": "GW1", "command_id": "c1", "code": 0, "message": "ok", "state": {"audio_out_state": 0, "volume": 9}},
        {"device": "GW2", "command_id": "c1", "code": 1, "message": "device offline"},
        {"device": "GW3", "command_id": "c1", "code": 2, "message": "unknown device"},
    ]
    status, body = call(sim, "GET", protocol.STATUS_PATH, key=api_key)
    gw1, gw2 = body["devices"]
    assert gw1["device"] == "GW1" and gw1["online"] is True and gw1["volume"] == 9 and gw1["audio_out_state"] == 0
    assert set(gw1) == {"device", "online", "audio_out_state", "volume", "rssi", "network", "version", "source", "ts"}
    assert gw2["online"] is False


def test_packets_act(make_sim: MakeSim, api_key: str) -> None:
    sim = make_sim(["GW1"])

    def send(packet: int, data: dict[str, Any] | None = None, cid: str = "c") -> dict[str, Any]:
        return call(sim, "POST", protocol.BATCH_PATH, batch(["GW1"], packet, data, cid), api_key)[1]["results"][0]

    send(5, {"url": "https://cdn.example.vn/a.mp3", "duration_s": 0.2, "repeat": 1, "volume": 3}, "p1")
    dev = sim.device("GW1")
    assert (dev.audio_out_state, dev.source, dev.volume) == (1, "https://cdn.example.vn/a.mp3", 3)
    assert wait_until(lambda: sim.device("GW1").audio_out_state == 0, timeout=10)  # the file ended
    send(11, {"url": "rtsp://10.0.0.9/live"}, "r1")
    assert sim.device("GW1").audio_out_state == 2
    send(12, {}, "r2")
    assert sim.device("GW1").audio_out_state == 0
    send(1, {"urls": ["https://cdn.example.vn/a.mp3"]}, "f1")
    send(2, {"slots": [{"url": "https://cdn.example.vn/a.mp3", "start": 1_725_160_000}]}, "s1")
    assert sim.device("GW1").files == ["https://cdn.example.vn/a.mp3"] and len(sim.device("GW1").schedule) == 1
    # A repeated command id is answered again but acted on once (a hub retry after a lost answer).
    send(7, {"volume": 8}, "v1")
    sim.set_device("GW1", volume=2)
    again = send(7, {"volume": 8}, "v1")
    assert again["code"] == 0 and sim.device("GW1").volume == 2
    assert send(6, {}, "s2")["code"] == 0
    late = call(sim, "POST", protocol.BATCH_PATH, batch(["GW1"], 6, {}, "x", expires_at=time.time() - 5), api_key)
    assert late[1]["results"][0] == {"device": "GW1", "command_id": "x", "code": 3, "message": "expired"}


@pytest.mark.parametrize(("body", "status", "words"), [
    (b"not json", 400, "not JSON"),
    (json.dumps(batch(["GW1"], 9)).encode(), 400, "packet_type 9"),
    (json.dumps(batch(["GW1"], 7, {"volume": 11})).encode(), 400, "data.volume"),
    (json.dumps(batch([], 6)).encode(), 400, "devices"),
    (json.dumps(batch(["GW1", "GW2", "GW3"], 6)).encode(), 413, "at most 2 devices"),
])
def test_bad_requests_are_refused(make_sim: MakeSim, api_key: str, body: bytes, status: int, words: str) -> None:
    sim = make_sim(["GW1"], max_devices=2)
    got, answer = call(sim, "POST", protocol.BATCH_PATH, raw=body, key=api_key)
    assert got == status and words in answer["error"]
    assert call(sim, "GET", "/api/v2/whatever", key=api_key)[0] == 404


def test_fault_switches(make_sim: MakeSim, api_key: str) -> None:
    sim = make_sim(["GW1", "GW2", "GW3"], wrong_volume=["GW1"], ack_without_acting=["GW2"], bad_status=["GW3"],
                   fail_next_n=1, status_garbage_next_n=1)
    # fail_next_n counts batch requests only; status polls never eat it
    assert call(sim, "GET", protocol.STATUS_PATH, key=api_key)[1].startswith(b"<html>")
    assert call(sim, "POST", protocol.BATCH_PATH, batch(["GW1"], 7, {"volume": 6}), api_key)[0] == 500
    status, body = call(sim, "POST", protocol.BATCH_PATH, batch(["GW1", "GW2"], 7, {"volume": 6}), api_key)
    assert status == 200
    assert body["results"][0]["state"]["volume"] == 8  # off by 2 steps
    assert body["results"][1]["code"] == 0 and "state" not in body["results"][1]
    assert sim.device("GW2").volume == 5  # acked without acting
    sim.set_device("GW1", volume=10)
    devices = {d["device"]: d for d in call(sim, "GET", protocol.STATUS_PATH, key=api_key)[1]["devices"]}
    assert devices["GW1"]["volume"] == 8 and devices["GW3"]["volume"] == 11
    with pytest.raises(ValueError, match="colour"):
        sim.set_device("GW1", colour="red")


def test_stop_does_not_wait_for_delayed_answers(api_key: str) -> None:
    sim = GatewaySim(["GW1"], api_key=api_key, delay_s=30).start()
    try:
        req = urllib.request.Request(sim.url + protocol.BATCH_PATH, method="POST",
                                     data=json.dumps(batch(["GW1"], 6)).encode(),
                                     headers={"Authorization": f"Bearer {api_key}"})
        with pytest.raises(OSError):
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=0.3)
    finally:
        started = time.monotonic()
        sim.stop()
    assert time.monotonic() - started < 5
    assert wait_until(lambda: any(r.status == 0 for r in sim.requests), 5)  # recorded as never answered


def test_cli(api_key: str) -> None:
    port = free_port()
    env = {**os.environ, "HUB_HTTP_GATEWAY_SIM_KEY": api_key}
    cmd = [sys.executable, "-c", "from hub_http_gateway.simcli import main; main()"]
    proc = subprocess.Popen([*cmd, "--port", str(port), "--count", "3", "--offline", "GW00002"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()  # the process prints one line once it serves
        assert f"3 devices behind http://127.0.0.1:{port}" in line, proc.stderr.read() if proc.poll() else line
        status, body = call(f"http://127.0.0.1:{port}", "GET", protocol.STATUS_PATH, key=api_key)
        assert status == 200 and [d["online"] for d in body["devices"]] == [True, False, True]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            assert proc.wait(15) == 0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            proc.stdout.close()
            proc.stderr.close()


def test_cli_refuses_to_run_without_a_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "HUB_HTTP_GATEWAY_SIM_KEY"}
    out = subprocess.run([sys.executable, "-c", "from hub_http_gateway.simcli import main; main()", "--port", "0"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "no default key" in out.stderr


def test_console_script_is_installed() -> None:
    script = os.path.join(os.path.dirname(sys.executable), "hub-http-gateway-sim")
    out = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--fail-next-n" in out.stdout
