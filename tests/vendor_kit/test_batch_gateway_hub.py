"""Read-back confirmation and hub-side priority arbitration, through the real hub (harness:
dispatch, rq job, ingest) with the batch gateway test plugin (tests/vendor_kit/batch_gateway),
whose devices give no acknowledgement and replace whatever plays."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hub.testing import HubHarness, wait_until
from hub.vendor import DeviceRef

from hub.plugins import Plugins
from hub_batch_gateway import plugin as batch_gateway_plugin  # tests/vendor_kit/conftest.py puts it on sys.path
from hub_batch_gateway.simulator import Gateway

IMEI = "860000000000017"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gateway(tmp_path: Path, services: None):  # noqa: ANN201
    cfg = {"url": f"http://127.0.0.1:{_port()}", "poll_interval_s": 0.2, "timeout_s": 2.0}
    sim = Gateway(cfg, [DeviceRef(id="SPK", address=IMEI, kind="speaker")])
    sim.start()
    plugins = Plugins()
    plugins.register_module(batch_gateway_plugin, "batch_gateway")
    h = HubHarness(tmp_path, "batch_gateway", cfg, listen=False, plugins=plugins)
    h.start()
    h.add_device("SPK", IMEI, "speaker")
    h.start_ingest()
    h.run_worker()
    try:
        yield h, sim
    finally:
        h.stop()
        sim.stop()


def _play(h: HubHarness, priority: str, short: bool = False) -> str:
    uri = f"http://127.0.0.1:9/{'short' if short else 'long'}-{priority}.mp3"
    cid = h.add_content(title=f"Bản tin {priority}", kind="audio_file", media={"uri": uri}, language="vi")
    return h.send("play", ["SPK"], content_id=cid, priority=priority).command.id


def test_a_device_without_acks_is_confirmed_by_its_status(gateway) -> None:  # noqa: ANN001
    h, sim = gateway
    cmd = h.send("set_volume", ["SPK"], {"level": 60}).command.id
    got = h.wait(cmd, 20)["SPK"]
    assert got.state == "acked", got
    assert got.result["confirmed_by"] == "status read-back" and abs(got.result["volume"] - 60) <= 4
    assert abs(sim.observe(IMEI)["volume"] - 60) <= 4


def test_a_lower_class_play_is_held_while_an_emergency_plays_and_sent_when_it_ends(gateway) -> None:  # noqa: ANN001
    h, sim = gateway
    emergency = _play(h, "emergency", short=True)  # the simulator plays "short" clips 8 s
    assert h.wait(emergency, 20)["SPK"].state == "acked"
    normal = _play(h, "normal")
    got = h.outcomes(normal)["SPK"]
    assert got.state == "queued" and got.reason.startswith("held: a emergency bulletin"), got
    assert "emergency" in sim.observe(IMEI)["source"]  # not cut off
    # once the emergency clip ends, the held play goes out and is confirmed
    assert wait_until(lambda: h.outcomes(normal)["SPK"].state == "acked", 40), h.outcomes(normal)
    assert "normal" in sim.observe(IMEI)["source"]
