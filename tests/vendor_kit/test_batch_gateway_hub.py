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


def test_the_hub_resumes_what_an_emergency_interrupted_on_a_device_without_its_own_arbiter(gateway) -> None:  # noqa: ANN001
    """The gateway's speakers replace whatever plays: the hub sends the interrupted programme item
    again when the emergency ends (a new command, issuer scheduler:arbiter, naming the original and
    the interruption), and the as-run log shows the three segments."""
    from hub.store.models import Command
    from tests.support.as_run import segments, summary

    h, sim = gateway
    cid = h.add_content(title="Chương trình sáng", kind="audio_file", language="vi",
                        media={"uri": "http://127.0.0.1:9/long-programme.mp3"})
    programme = h.send("play", ["SPK"], content_id=cid, expires_in=120).command
    assert h.wait(programme.id, 20)["SPK"].state == "acked"
    emergency = _play(h, "emergency", short=True)  # 8 s
    assert h.wait(emergency, 20)["SPK"].state == "acked"
    assert wait_until(lambda: len(segments(h.rt, "SPK")) >= 3, 40), summary(h.rt, "SPK")
    cut, alert, resumed = segments(h.rt, "SPK")[:3]
    assert (cut.command_id, cut.outcome, cut.interrupted_by) == (programme.id, "interrupted", emergency)
    assert (alert.command_id, alert.outcome) == (emergency, "finished")
    assert resumed.resume_of == programme.id and resumed.outcome == "playing"
    assert cut.follow_up == "resumed" and cut.resumed_by == resumed.command_id != programme.id
    with h.rt.db.session() as s:
        again = s.get(Command, resumed.command_id)
        assert again.issuer == "scheduler:arbiter" and again.content_id == cid
        assert again.idempotency_key == f"resume:{programme.id}:after:{emergency}:SPK"
        assert again.expires_at == programme.expires_at  # it lives only as long as the slot
    assert "long-programme" in sim.observe(IMEI)["source"]


def test_an_emergency_waits_behind_an_emergency_on_a_device_without_its_own_arbiter(gateway) -> None:  # noqa: ANN001
    h, sim = gateway
    first = _play(h, "emergency", short=True)
    assert h.wait(first, 20)["SPK"].state == "acked"
    second = _play(h, "emergency")
    got = h.outcomes(second)["SPK"]
    assert got.state == "queued" and got.reason.startswith("held: a emergency bulletin"), got
    assert "short-emergency" in sim.observe(IMEI)["source"]  # the first is not cut off
    assert wait_until(lambda: h.outcomes(second)["SPK"].state == "acked", 40), h.outcomes(second)
