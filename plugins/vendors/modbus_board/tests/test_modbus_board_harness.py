"""End to end through a whole hub in-process (hub.testing.HubHarness): real dispatch, the real rq
job with its retries, real ingest; devices are simulated controllers on loopback."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.testing import HubHarness

from hub_modbus_board.board import UnitSpec
from modbus_board_helpers import FAST, VENDOR, VIETNAMESE, VIETNAMESE_ASCII, only_this_plugin, wait_until

BACKOFF = (0.1, 0.2)  # three attempts in all


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubHarness]:
    with HubHarness(tmp_path, VENDOR, dict(FAST), plugins=only_this_plugin(), retry_backoff_s=BACKOFF) as h:
        yield h


def _run(h: HubHarness, verb: str, devices: list[str], params: dict[str, Any] | None = None,
         timeout: float = 30.0) -> dict[str, Any]:
    sub = h.send(verb, devices, params)
    return h.wait(sub.command.id, timeout)


def test_every_verb_is_acked_with_its_read_back(hub: HubHarness, make_sim) -> None:
    sim = make_sim([1, 2])
    hub.add_device("B1", sim.address(1), "led_board")
    hub.add_device("S1", sim.address(2), "speaker")
    got = _run(hub, "led_show", ["B1"], {"text": VIETNAMESE})
    assert got["B1"].state == "acked", got
    assert got["B1"].result["text"] == VIETNAMESE and sim.unit(1).text_bytes == VIETNAMESE.encode()
    got = _run(hub, "set_brightness", ["B1"], {"level": 35})
    assert got["B1"].state == "acked" and got["B1"].result["brightness"] == 35 and sim.unit(1).brightness == 35
    got = _run(hub, "set_volume", ["S1"], {"level": 60})
    assert got["S1"].state == "acked" and got["S1"].result["volume"] == 61 and sim.unit(2).volume == 19
    got = _run(hub, "power", ["S1", "B1"], {"on": False})
    assert {d: o.state for d, o in got.items()} == {"S1": "acked", "B1": "acked"}
    assert got["S1"].result["power"] is False and not sim.unit(1).power and not sim.unit(2).power
    got = _run(hub, "led_clear", ["B1"])
    assert got["B1"].state == "acked" and sim.unit(1).text == ""


def test_ascii_board_in_the_registry_gets_the_transliteration(hub: HubHarness, make_sim) -> None:
    sim = make_sim([1, UnitSpec(2, unicode=False)])
    hub.add_device("U1", sim.address(1), "led_board")
    hub.add_device("A2", sim.address(2), "led_board", config={"unicode": False},
                   capabilities=["led.text", "led.brightness", "power.switch", "status.heartbeat"])
    got = _run(hub, "led_show", ["U1", "A2"], {"text": VIETNAMESE})
    assert got["U1"].state == "acked" and got["A2"].state == "acked", got
    assert sim.unit(1).text == VIETNAMESE and sim.unit(2).text == VIETNAMESE_ASCII
    assert got["A2"].result["transliterated"] is True


def test_unresponsive_unit_fails_after_three_attempts_while_another_endpoint_is_acked(
        hub: HubHarness, make_sim) -> None:
    dead, alive = make_sim([1]), make_sim([1])
    dead.set_faults(1, unresponsive=True)
    hub.add_device("DEAD", dead.address(1), "speaker")
    hub.add_device("LIVE", alive.address(1), "speaker")
    got = _run(hub, "set_volume", ["DEAD", "LIVE"], {"level": 40})
    assert got["LIVE"].state == "acked" and got["LIVE"].attempts == 1, got
    assert got["DEAD"].state == "failed" and got["DEAD"].attempts == 3, got
    assert "gave up after 3 attempts" in got["DEAD"].reason
    assert dead.address(1) in got["DEAD"].reason and "timeout" in got["DEAD"].reason
    # The worker keeps serving.
    got = _run(hub, "set_volume", ["LIVE"], {"level": 70})
    assert got["LIVE"].state == "acked" and alive.unit(1).volume == 22


def test_modbus_exception_fails_after_one_attempt_naming_it(hub: HubHarness, make_sim) -> None:
    sim = make_sim([1])
    sim.set_faults(1, exception_on_write=True)
    hub.add_device("B1", sim.address(1), "led_board")
    got = _run(hub, "set_brightness", ["B1"], {"level": 10})
    assert got["B1"].state == "failed" and got["B1"].attempts == 1, got
    assert "Modbus exception 4 (server device failure)" in got["B1"].reason
    assert "gave up" not in got["B1"].reason


def test_controller_restarted_between_attempts_is_acked_on_retry(hub: HubHarness, make_sim) -> None:
    sim = make_sim([1])
    hub.add_device("B1", sim.address(1), "led_board")
    sim.stop()  # the controller reboots…
    sub = hub.send("led_show", ["B1"], {"text": VIETNAMESE}, run_worker=False)
    cid = sub.command.id

    def restart_after_first_attempt() -> None:
        # …and is back once the first attempt has been refused. The worker's adapter (shared
        # through the runtime) reports the refusal in its health; the attempts counter would
        # not do, as it is raised before the attempt is made.
        worker_adapter = hub.rt.adapter(VENDOR)
        if wait_until(lambda: not worker_adapter.health().ok, 20, interval=0.002):
            sim.start()

    restarter = threading.Thread(target=restart_after_first_attempt, daemon=True)
    restarter.start()
    hub.work()
    restarter.join(20)
    got = hub.wait(cid, 30)
    assert got["B1"].state == "acked", got
    # A restart takes about a millisecond and the first retry comes 0.1 s after the refusal.
    assert got["B1"].attempts in (2, 3), got
    assert sim.unit(1).text == VIETNAMESE


def test_status_polling_reaches_the_registry_and_presence_goes_offline(hub: HubHarness, make_sim) -> None:
    sim = make_sim([1, 2])
    hub.add_device("B1", sim.address(1), "led_board")
    hub.add_device("B2", sim.address(2), "led_board")
    assert hub.ingest is not None
    # The ingest hands the registry's devices to watch() at start and every 30 s; these were
    # added after the start, so ask for the refresh now rather than wait for it.
    hub.ingest.refresh_watch()
    sim.set_alarms(2, speaker_line_open=True)
    st = hub.wait_status("B1", lambda s: s["online"] and s["volume"] == 52, 15)
    assert st is not None and st["online"] and st["firmware"] == "1.4.2", st
    st2 = hub.wait_status("B2", lambda s: s["faults"] == ["speaker_line_open"], 15)
    assert st2 is not None and st2["faults"] == ["speaker_line_open"], st2
    sim.set_faults(1, unresponsive=True)
    st = hub.wait_status("B1", lambda s: s["online"] is False, 15)
    assert st is not None and st["online"] is False, st
    assert hub.status("B2")["online"] is True  # polling carries on for the rest
