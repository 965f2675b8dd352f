"""End to end through a whole in-process hub (HubHarness): real dispatch, the real rq job with
its retries, the plugin's adapter, the status poller and the real ingest."""
from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from hub.testing import HubHarness

from hub_http_gateway.simulator import GatewaySim
from http_gateway_helpers import free_port, ids

MakeSim = Callable[..., GatewaySim]
MakeHub = Callable[..., HubHarness]

pytestmark = pytest.mark.timeout(180)


def fleet(n: int) -> dict[str, str]:
    """Hub device id -> gateway device id."""
    return {f"SPK-{address}": address for address in ids(n)}


def test_200_devices_in_one_command(make_sim: MakeSim, make_hub: MakeHub) -> None:
    sim = make_sim(ids(200))
    hub = make_hub(sim, devices=fleet(200), batch_limit=50, poll_interval_s=1.0)
    sub = hub.send("set_volume", list(fleet(200)), {"level": 70})
    got = hub.wait(sub.command.id, timeout=60)
    assert len(got) == 200
    assert {o.state for o in got.values()} == {"acked"}
    assert {o.attempts for o in got.values()} == {1}
    assert got["SPK-GW00001"].result == {"volume": 67, "activity": "idle"}
    batches = sim.batch_requests()
    assert len(batches) <= math.ceil(200 / 50)
    assert sorted(d for r in batches for d in r.devices) == ids(200)
    assert {sim.device(a).volume for a in ids(200)} == {7}


def test_volume_is_normalised_both_ways(make_sim: MakeSim, make_hub: MakeHub) -> None:
    sim = make_sim(["GW1"])
    hub = make_hub(sim, devices={"SPK1": "GW1"})
    got = hub.wait(hub.send("set_volume", ["SPK1"], {"level": 70}).command.id)
    assert got["SPK1"].state == "acked"
    assert sim.device("GW1").volume == 7  # 70 % of the way from 1 to 10, rounded half up
    st = hub.wait_status("SPK1", lambda s: s["volume"] == 67)
    assert st is not None and st["volume"] == 67 and st["online"] is True
    sim.set_device("GW1", volume=10)
    assert hub.wait_status("SPK1", lambda s: s["volume"] == 100)["volume"] == 100
    sim.set_device("GW1", volume=1)
    assert hub.wait_status("SPK1", lambda s: s["volume"] == 0)["volume"] == 0
    assert st["signal"] == {"network": "4g", "rssi_dbm": -71} and st["firmware"] == "2.3.1"


def test_http_500_once_then_ok(make_sim: MakeSim, make_hub: MakeHub) -> None:
    sim = make_sim(["GW1"], fail_next_n=1)
    hub = make_hub(sim, devices={"SPK1": "GW1"})
    got = hub.wait(hub.send("stop", ["SPK1"]).command.id)
    assert got["SPK1"].state == "acked" and got["SPK1"].attempts == 2
    assert [r.status for r in sim.batch_requests()] == [500, 200]


def test_http_500_always(make_sim: MakeSim, make_hub: MakeHub) -> None:
    sim = make_sim(["GW1"], fail_next_n=1000)
    hub = make_hub(sim, devices={"SPK1": "GW1"})
    got = hub.wait(hub.send("stop", ["SPK1"]).command.id)
    assert got["SPK1"].state == "failed" and got["SPK1"].attempts == 3
    assert "HTTP 500" in got["SPK1"].reason and "gave up after 3 attempts" in got["SPK1"].reason


def test_timeout(make_sim: MakeSim, make_hub: MakeHub) -> None:
    sim = make_sim(["GW1"], delay_s=10.0)
    hub = make_hub(sim, devices={"SPK1": "GW1"}, timeout_s=0.5)
    got = hub.wait(hub.send("stop", ["SPK1"]).command.id, timeout=60)
    assert got["SPK1"].state == "failed" and got["SPK1"].attempts == 3
    assert "timed out after 0.5s" in got["SPK1"].reason


def test_wrong_api_key(make_sim: MakeSim, make_hub: MakeHub) -> None:
    sim = make_sim(["GW1"])
    hub = make_hub(sim, devices={"SPK1": "GW1"}, api_key="not-the-gateways-key")
    got = hub.wait(hub.send("stop", ["SPK1"]).command.id)
    assert got["SPK1"].state == "failed" and got["SPK1"].attempts == 1
    assert "gateway refused the API key" in got["SPK1"].reason
    assert "not-the-gateways-key" not in got["SPK1"].reason
    assert sim.device("GW1").commands == []


def test_one_offline_device_among_healthy_ones(make_sim: MakeSim, make_hub: MakeHub) -> None:
    sim = make_sim(ids(5), offline=["GW00003"])
    hub = make_hub(sim, devices=fleet(5))
    got = hub.wait(hub.send("set_volume", list(fleet(5)), {"level": 40}).command.id)
    assert got["SPK-GW00003"].state == "failed" and got["SPK-GW00003"].attempts == 1
    assert got["SPK-GW00003"].reason == "device offline (gateway code 1)"
    assert {got[f"SPK-{a}"].state for a in ids(5) if a != "GW00003"} == {"acked"}
    assert len(sim.batch_requests()) == 1
    assert hub.wait_status("SPK-GW00003", lambda s: s["online"] is False)["online"] is False


def test_the_worker_keeps_serving_after_faults(make_sim: MakeSim, make_hub: MakeHub) -> None:
    port = free_port()
    sim = make_sim(["GW1", "GW2"], port=port, fail_next_n=1000)
    hub = make_hub(sim, devices={"SPK1": "GW1", "SPK2": "GW2"}, timeout_s=0.5)
    assert hub.wait(hub.send("stop", ["SPK1"]).command.id)["SPK1"].state == "failed"
    sim.fail_next_n, sim.delay_s = 0, 10.0
    assert hub.wait(hub.send("stop", ["SPK1"]).command.id, timeout=60)["SPK1"].state == "failed"
    sim.stop()  # the gateway goes away altogether
    down = hub.wait(hub.send("stop", ["SPK1"]).command.id)["SPK1"]
    assert down.state == "failed" and "unreachable" in down.reason
    healthy = make_sim(["GW1", "GW2"], port=port)  # and comes back on the same address
    got = hub.wait(hub.send("set_volume", ["SPK1", "SPK2"], {"level": 100}).command.id)
    assert {o.state for o in got.values()} == {"acked"}
    assert healthy.device("GW2").volume == 10


def test_the_poller_survives_garbage(make_sim: MakeSim, make_hub: MakeHub) -> None:
    sim = make_sim(["GW1", "GW2"], bad_status=["GW2"])
    hub = make_hub(sim, devices={"SPK1": "GW1", "SPK2": "GW2"})
    assert hub.wait_status("SPK1", lambda s: s["volume"] == 44) is not None
    sim.status_garbage_next_n = 5
    sim.set_device("GW1", volume=10)
    assert hub.wait_status("SPK1", lambda s: s["volume"] == 100)["volume"] == 100
    assert sim.status_garbage_next_n == 0  # the garbage pages were all polled
    poller = hub.ingest.adapters["http_gateway"]._poller
    assert poller is not None and poller.alive and poller.failures >= 5
    assert hub.status("SPK2") is None  # volume 11 never reached the database
