"""Status polling: what reaches the sink, and a poller that nothing can kill but close()."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from hub_http_gateway.adapter import HttpGatewayAdapter
from hub_http_gateway.client import GatewayError
from hub_http_gateway.parsing import status_from_object
from hub_http_gateway.poller import StatusPoller
from hub_http_gateway.simulator import GatewaySim
from http_gateway_helpers import RecordingSink, wait_until

MakeSim = Callable[..., GatewaySim]
MakeAdapter = Callable[..., HttpGatewayAdapter]


def entry(device: str, **over: Any) -> dict[str, Any]:
    return {"device": device, "online": True, "audio_out_state": 0, "volume": 5, "rssi": -80, "ts": 1_725_160_000,
            **over}


class ScriptedClient:
    """Stands in for GatewayClient: answers get_status() from a script, then repeats the last."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls = 0

    def get_status(self) -> dict[str, Any]:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def poller(client: Any, sink: Any) -> StatusPoller:
    return StatusPoller(client, sink, "http_gateway", 0.05, status_from_object)


def test_status_on_change_and_presence_on_transitions(sink: RecordingSink) -> None:
    client = ScriptedClient({"devices": [entry("A"), entry("B", online=False)]},
                            {"devices": [entry("A"), entry("B", online=False)]},  # nothing new
                            {"devices": [entry("A", volume=10, ts=1_725_160_030), entry("B", ts=1_725_160_030)]},
                            {"devices": [entry("B", ts=1_725_160_030)]})  # A no longer listed
    p = poller(client, sink)
    for _ in range(4):
        assert p.poll_once()
    assert [s["volume"] for s in sink.statuses_for("A")] == [44, 100]
    assert sink.presence_for("A") == [True, False]
    assert sink.presence_for("B") == [False, True]
    assert len(sink.statuses_for("B")) == 1  # an offline device's stale entry is not news
    assert sink.vendors == {"http_gateway"}


def test_everything_is_reported_again_after_the_resync_interval(sink: RecordingSink) -> None:
    client = ScriptedClient({"devices": [entry("A"), entry("B", online=False)]})
    p = StatusPoller(client, sink, "http_gateway", 0.05, status_from_object, resync_s=0.2)
    p.poll_once()
    p.poll_once()
    assert len(sink.statuses_for("A")) == 1 and sink.presence_for("B") == [False]
    time.sleep(0.25)
    p.poll_once()
    assert len(sink.statuses_for("A")) == 2 and sink.presence_for("A") == [True, True]
    assert sink.presence_for("B") == [False, False]


def test_garbage_and_failures_are_survived(sink: RecordingSink) -> None:
    client = ScriptedClient(GatewayError("gateway answered HTTP 200 ... not JSON", transient=True),
                            {"no": "devices"},
                            {"devices": ["junk", {"volume": 5}, entry("A", volume=11), entry("B")]},
                            {"devices": [entry("A"), entry("B")]})
    p = poller(client, sink)
    assert not p.poll_once() and not p.poll_once()
    assert p.poll_once()
    assert sink.statuses_for("A") == [] and len(sink.statuses_for("B")) == 1  # A's bad entry alone is dropped
    assert p.poll_once()
    assert len(sink.statuses_for("A")) == 1


def test_a_failing_sink_does_not_stop_the_thread() -> None:
    class Exploding(RecordingSink):
        def status(self, vendor: str, address: str, status: dict[str, Any]) -> None:
            super().status(vendor, address, status)
            raise RuntimeError("database is locked")

    sink = Exploding()
    client = ScriptedClient({"devices": [entry("A")]}, {"devices": [entry("A", ts=1_725_160_031)]},
                            {"devices": [entry("A", ts=1_725_160_032)]})
    p = poller(client, sink)
    p.start()
    try:
        assert sink.wait(lambda: len(sink.statuses) >= 3, timeout=10)
        assert p.alive
    finally:
        assert p.stop(5)


def test_the_thread_survives_an_unexpected_exception(sink: RecordingSink) -> None:
    client = ScriptedClient(KeyError("bug"), {"devices": [entry("A")]})
    p = poller(client, sink)
    p.start()
    try:
        assert not p.wait_first(5)  # the first poll ended, badly
        assert sink.wait(lambda: len(sink.statuses) == 1, timeout=10)
    finally:
        assert p.stop(5)


def test_listen_polls_the_simulator_until_close(make_sim: MakeSim, make_adapter: MakeAdapter,
                                                sink: RecordingSink) -> None:
    sim = make_sim(["GW1", "GW2"], offline=["GW2"], status_garbage_next_n=2)
    adapter = make_adapter(sim, poll_interval_s=0.05)
    adapter.listen(sink)
    assert sink.wait(lambda: len(sink.statuses_for("GW1")) == 1, timeout=10)
    assert sink.presence_for("GW2") == [False]
    assert adapter._poller is not None and adapter._poller.failures >= 2  # the garbage pages were polled
    sim.set_device("GW1", volume=9)
    assert sink.wait(lambda: sink.statuses_for("GW1")[-1]["volume"] == 89, timeout=10)
    thread_names = {t.name for t in threading.enumerate()}
    assert "http_gateway-status-poller" in thread_names
    started = time.monotonic()
    adapter.close()
    assert time.monotonic() - started < 5
    assert wait_until(lambda: "http_gateway-status-poller" not in {t.name for t in threading.enumerate()}, 5)


def test_wait_ready_reports_the_first_poll(make_sim: MakeSim, make_adapter: MakeAdapter,
                                           sink: RecordingSink) -> None:
    sim = make_sim(["GW1"])
    good = make_adapter(sim, poll_interval_s=5)
    good.listen(sink)
    assert good.wait_ready(10)
    bad = make_adapter(sim, api_key="wrong", poll_interval_s=5)
    bad.listen(sink)
    assert not bad.wait_ready(10)  # answers at once, and says the gateway is not usable


def test_close_is_bounded_while_the_gateway_hangs(make_adapter: MakeAdapter, sink: RecordingSink) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        adapter = make_adapter(base_url=f"http://127.0.0.1:{silent.getsockname()[1]}", api_key="k", timeout_s=60)
        adapter.listen(sink)
        assert not adapter.wait_ready(0.3)  # the first poll is still waiting for an answer
        started = time.monotonic()
        adapter.close()
        assert time.monotonic() - started < 15
    assert sink.statuses == [] and sink.presence_events == []
