"""End to end through a whole hub in-process (HubHarness): real dispatch, the real rq job with
its retries, the adapter on a simulated TCP bus, and status through the real ingest."""
from __future__ import annotations

from typing import Any

from hub.testing import HubHarness

from hub_serial_led.simulator import SerialBoardsSim, SimBoard

URGENT = "Thông báo khẩn: bão số 3"


def _boards(hub: HubHarness, sim: SerialBoardsSim, **config: Any) -> list[str]:
    """Register every board of `sim` as device B<n>; returns their ids."""
    ids = []
    for n, board in sim.boards.items():
        cfg = dict(config) if board.unicode else {**config, "unicode": False}
        ids.append(hub.add_device(f"B{n}", sim.address(n), kind="led_board", config=cfg))
    return ids


def test_every_verb_is_acked(make_sim: Any, make_hub: Any) -> None:
    sim = make_sim([5, SimBoard(6, unicode=False)])
    hub = make_hub()
    _boards(hub, sim)
    board5, board6 = sim.board(5), sim.board(6)

    sub = hub.send("led_show", ["B5", "B6"], {"text": URGENT, "effect": "scroll"})
    got = hub.wait(sub.command.id)
    assert {k: (o.state, o.attempts) for k, o in got.items()} == {"B5": ("acked", 1), "B6": ("acked", 1)}
    assert board5.text == URGENT and board5.received[-1][1] == b"\x01" + URGENT.encode("utf-8")
    assert board6.text == "Thong bao khan: bao so 3"
    assert got["B6"].result["encoding"] == "ascii" and got["B6"].result["shown"] == board6.text

    sub = hub.send("set_brightness", ["B5"], {"level": 40})
    got = hub.wait(sub.command.id)
    assert got["B5"].state == "acked" and got["B5"].result == {"board": 5, "brightness": 40}
    assert board5.brightness == 40

    sub = hub.send("led_clear", ["B5", "B6"])
    assert {o.state for o in hub.wait(sub.command.id).values()} == {"acked"}
    assert board5.text == board6.text == ""

    sub = hub.send("power", ["B6"], {"on": False})
    got = hub.wait(sub.command.id)
    assert got["B6"].state == "acked" and got["B6"].result["power"] is False and board6.power is False


def test_led_content_goes_to_the_board(make_sim: Any, make_hub: Any) -> None:
    sim = make_sim([5])
    hub = make_hub()
    _boards(hub, sim)
    content = hub.add_content(title="Bão", kind="led_text", body="Đường ngập, sạt lở", priority="emergency")
    sub = hub.send("led_show", ["B5"], content_id=content)
    assert hub.wait(sub.command.id)["B5"].state == "acked"
    assert sim.board(5).text == "Đường ngập, sạt lở"


def test_corrupt_reply_once_is_acked_on_the_second_attempt(make_sim: Any, make_hub: Any) -> None:
    sim = make_sim([SimBoard(5, corrupt_next_n=1)])
    hub = make_hub()
    _boards(hub, sim)
    got = hub.wait(hub.send("set_brightness", ["B5"], {"level": 60}).command.id)["B5"]
    assert (got.state, got.attempts) == ("acked", 2)
    assert sim.board(5).brightness == 60


def test_always_corrupt_fails_naming_the_checksum_after_three_attempts(make_sim: Any, make_hub: Any) -> None:
    sim = make_sim([SimBoard(5, corrupt_next_n=1000)])
    hub = make_hub()
    _boards(hub, sim)
    got = hub.wait(hub.send("led_clear", ["B5"]).command.id)["B5"]
    assert (got.state, got.attempts) == ("failed", 3)
    assert "gave up after 3 attempts" in got.reason
    assert "corrupt reply frame: checksum 0x" in got.reason
    assert len(sim.board(5).received) == 3


def test_silent_board_fails_naming_the_timeout(make_sim: Any, make_hub: Any) -> None:
    sim = make_sim([SimBoard(5, silent=True)])
    hub = make_hub(timeout_s=0.5)
    _boards(hub, sim)
    got = hub.wait(hub.send("led_show", ["B5"], {"text": "x"}).command.id)["B5"]
    assert (got.state, got.attempts) == ("failed", 3)
    assert "no reply within 0.5 s" in got.reason


def test_reply_from_the_wrong_board_fails_naming_it(make_sim: Any, make_hub: Any) -> None:
    sim = make_sim([SimBoard(5, wrong_address=7)])
    hub = make_hub()
    _boards(hub, sim)
    got = hub.wait(hub.send("led_clear", ["B5"]).command.id)["B5"]
    assert (got.state, got.attempts) == ("failed", 3)
    assert "reply from board 7, expected 5" in got.reason


def test_nak_fails_for_good_after_one_attempt(make_sim: Any, make_hub: Any) -> None:
    sim = make_sim([SimBoard(5, nak_all=True)])
    hub = make_hub()
    _boards(hub, sim)
    got = hub.wait(hub.send("set_brightness", ["B5"], {"level": 10}).command.id)["B5"]
    assert (got.state, got.attempts) == ("failed", 1)
    assert "gave up" not in got.reason
    assert "board 5 refused set brightness: error 0x07 (hardware fault)" in got.reason
    assert len(sim.board(5).received) == 1


def test_a_failing_board_does_not_stop_its_neighbour_on_the_bus(make_sim: Any, make_hub: Any) -> None:
    sim = make_sim([SimBoard(5, silent=True), SimBoard(6)])
    hub = make_hub()
    _boards(hub, sim)
    got = hub.wait(hub.send("led_show", ["B5", "B6"], {"text": URGENT}).command.id)
    assert (got["B6"].state, got["B6"].attempts) == ("acked", 1)
    assert (got["B5"].state, got["B5"].attempts) == ("failed", 3) and "no reply within" in got["B5"].reason
    assert sim.board(6).text == URGENT
    assert len(sim.board(6).received) == 1  # the retries went to the failing board only
    # ... and the worker keeps serving the line.
    got = hub.wait(hub.send("set_brightness", ["B6"], {"level": 25}).command.id)
    assert got["B6"].state == "acked" and sim.board(6).brightness == 25


def test_status_reaches_the_hub_through_polling(make_sim: Any, make_hub: Any) -> None:
    sim = make_sim([SimBoard(5, firmware="3.2.1"), SimBoard(6, status_faults={"power_supply"})])
    hub = make_hub(poll_interval_s=0.2, offline_after=2)
    _boards(hub, sim)
    assert hub.wait(hub.send("set_brightness", ["B5"], {"level": 30}).command.id)["B5"].state == "acked"
    st = hub.wait_status("B5", lambda s: s["brightness"] == 30)
    assert st is not None and st["brightness"] == 30, st
    assert st["online"] is True and st["firmware"] == "3.2.1" and st["activity"] == "idle" and st["power"] is True
    # A board never sent to is polled too: the ingest hands the adapter every registered device.
    st = hub.wait_status("B6", lambda s: s["faults"] == ["power_supply"])
    assert st is not None and st["faults"] == ["power_supply"], st
    # Silence means offline.
    sim.set_faults(5, silent=True)
    st = hub.wait_status("B5", lambda s: s["online"] is False)
    assert st is not None and st["online"] is False, st


def test_status_shows_what_an_ack_without_acting_hid(make_sim: Any, make_hub: Any) -> None:
    sim = make_sim([SimBoard(5, ack_without_acting=True)])
    hub = make_hub(poll_interval_s=0.2)
    _boards(hub, sim)
    got = hub.wait(hub.send("set_brightness", ["B5"], {"level": 20}).command.id)["B5"]
    assert got.state == "acked"
    st = hub.wait_status("B5", lambda s: s["brightness"] is not None)
    assert st is not None and st["brightness"] == 100  # the board did not change
