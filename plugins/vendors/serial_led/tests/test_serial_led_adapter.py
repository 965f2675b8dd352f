"""The adapter against simulated buses, without the rest of the hub: text encodings, board
answers, port failures, several buses, frame retries, the cross-process lock and the poller."""
from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.text import nfc
from hub.vendor import Outcome, Outgoing, Result

from hub_serial_led import protocol as p
from hub_serial_led.adapter import SerialLedAdapter
from hub_serial_led.bus import BUSES
from hub_serial_led.frame import Frame, FrameReader, encode_frame
from hub_serial_led.simulator import SimBoard
from serial_led_helpers import RecordingSink, device, envelope, free_port, outgoing, wait_until

URGENT = "Thông báo khẩn"
URGENT_NFD = unicodedata.normalize("NFD", URGENT)


@pytest.fixture
def make_adapter(lock_dir: str) -> Iterator[Any]:
    made: list[SerialLedAdapter] = []

    def make(**config: Any) -> SerialLedAdapter:
        config.setdefault("lock_dir", lock_dir)
        adapter = SerialLedAdapter(config)
        adapter.open()
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


def one(adapter: SerialLedAdapter, dev: Any, verb: str, params: dict[str, Any] | None = None) -> Result:
    [result] = adapter.send([outgoing(dev, verb, params)])
    return result


# -- text -----------------------------------------------------------------------------------------
def test_vietnamese_is_sent_nfc_utf8_byte_for_byte(make_sim: Any, make_adapter: Any) -> None:
    sim = make_sim([5])
    r = one(make_adapter(), device(sim.address(5)), "led_show", {"text": URGENT_NFD, "effect": "blink"})
    assert r.outcome is Outcome.ACKED, r.reason
    assert r.detail == {"board": 5, "effect": "blink", "encoding": "utf-8", "chars": len(URGENT)}
    command, payload = sim.board(5).received[-1]
    assert command == p.SHOW_TEXT
    assert payload == b"\x02" + "Thông báo khẩn".encode("utf-8")
    assert payload[1:] == nfc(URGENT_NFD).encode("utf-8") != URGENT_NFD.encode("utf-8")
    assert sim.board(5).text == URGENT and sim.board(5).effect == "blink"


@pytest.mark.parametrize("how", [{"config": {"unicode": False}}, {"config": {"unicode": "false"}},
                                 {"capabilities": ["led.text", "led.brightness"]}])
def test_ascii_boards_get_a_transliteration(make_sim: Any, make_adapter: Any, how: dict[str, Any]) -> None:
    sim = make_sim([SimBoard(6, unicode=False)])
    dev = device(sim.address(6), capabilities=how.get("capabilities"), **how.get("config", {}))
    r = one(make_adapter(), dev, "led_show", {"text": URGENT_NFD + ": đường ngập"})
    assert r.outcome is Outcome.ACKED, r.reason
    assert r.detail is not None and r.detail["encoding"] == "ascii"
    assert r.detail["shown"] == "Thong bao khan: duong ngap"
    assert sim.board(6).received[-1][1] == b"\x01Thong bao khan: duong ngap"
    assert sim.board(6).text == "Thong bao khan: duong ngap"


def test_unicode_text_to_an_ascii_only_board_is_refused_not_garbled(make_sim: Any, make_adapter: Any) -> None:
    sim = make_sim([SimBoard(6, unicode=False)])
    r = one(make_adapter(), device(sim.address(6)), "led_show", {"text": URGENT})
    assert r.outcome is Outcome.FAILED and not r.transient
    assert "error 0x05 (characters the board cannot show)" in (r.reason or "")
    assert sim.board(6).text == ""


def test_bad_unicode_setting_fails_for_good(make_sim: Any, make_adapter: Any) -> None:
    sim = make_sim([5])
    r = one(make_adapter(), device(sim.address(5), unicode="maybe"), "led_show", {"text": "x"})
    assert r.outcome is Outcome.FAILED and not r.transient and "unicode" in (r.reason or "")


def test_text_from_content_body(make_sim: Any, make_adapter: Any) -> None:
    sim = make_sim([5])
    adapter = make_adapter()
    dev = device(sim.address(5))
    [r] = adapter.send([Outgoing(dev, envelope("led_show", {"effect": "static"}, content={"body": "Bão số 3"}))])
    assert r.outcome is Outcome.ACKED and sim.board(5).text == "Bão số 3"


def test_mangled_text_is_caught_by_the_echoed_checksum(make_sim: Any, make_adapter: Any) -> None:
    sim = make_sim([SimBoard(5, mangle_text=True)])
    r = one(make_adapter(), device(sim.address(5)), "led_show", {"text": URGENT})
    assert r.outcome is Outcome.FAILED and not r.transient
    assert "stored other text" in (r.reason or "") and "text checksum 0x" in (r.reason or "")
    assert sim.board(5).text == "Thong bao khan"
    assert one(make_adapter(), device(sim.address(5)), "led_show", {"text": "no diacritics"}).outcome is Outcome.ACKED


# -- other verbs and board answers ------------------------------------------------------------------
def test_verbs_and_read_back(make_sim: Any, make_adapter: Any) -> None:
    sim = make_sim([5])
    adapter, dev = make_adapter(), device(sim.address(5))
    r = one(adapter, dev, "set_brightness", {"level": 35})
    assert r.outcome is Outcome.ACKED and r.detail == {"board": 5, "brightness": 35}
    assert sim.board(5).brightness == 35
    assert one(adapter, dev, "led_show", {"text": "x"}).outcome is Outcome.ACKED
    assert one(adapter, dev, "led_clear").outcome is Outcome.ACKED and sim.board(5).text == ""
    r = one(adapter, dev, "power", {"on": False})
    assert r.outcome is Outcome.ACKED and r.detail == {"board": 5, "power": False} and not sim.board(5).power
    r = one(adapter, dev, "set_brightness", {"level": 50})
    assert r.outcome is Outcome.FAILED and not r.transient and "power is off" in (r.reason or "")
    assert one(adapter, dev, "power", {"on": True}).outcome is Outcome.ACKED and sim.board(5).power


def test_ack_without_acting_is_acked(make_sim: Any, make_adapter: Any) -> None:
    sim = make_sim([SimBoard(5, ack_without_acting=True)])
    r = one(make_adapter(), device(sim.address(5)), "set_brightness", {"level": 10})
    assert r.outcome is Outcome.ACKED  # only status polling can reveal this board
    assert sim.board(5).brightness == 100


@pytest.mark.parametrize("address, verb, params, problem", [
    ("socket://127.0.0.1:1", "led_clear", {}, "#BOARD"),
    ("socket://127.0.0.1:1#0", "led_clear", {}, "outside 1–254"),
    ("socket://127.0.0.1:1#x5", "led_clear", {}, "decimal"),
    ("socket://127.0.0.1:1#5", "play", {}, "cannot carry out play"),
    ("socket://127.0.0.1:1#5", "led_show", {"text": "x", "effect": "dance"}, "effect"),
    ("socket://127.0.0.1:1#5", "led_show", {"text": "x" * 70000}, "at most 65532"),
    ("socket://127.0.0.1:1#5", "set_brightness", {"level": 101}, "outside 0–100"),
    ("socket://127.0.0.1:1#5", "power", {}, "params.on"),
])
def test_hopeless_requests_fail_without_touching_the_bus(make_adapter: Any, address: str, verb: str,
                                                         params: dict[str, Any], problem: str) -> None:
    r = one(make_adapter(), device(address), verb, params)
    assert r.outcome is Outcome.FAILED and not r.transient and problem in (r.reason or "")


def test_expired_commands_are_not_sent(make_sim: Any, make_adapter: Any) -> None:
    sim = make_sim([5])
    dev = device(sim.address(5))
    [r] = make_adapter().send([Outgoing(dev, envelope("set_brightness", {"level": 10}, expires_in_s=-300))])
    assert r.outcome is Outcome.FAILED and not r.transient and "expired at" in (r.reason or "")
    assert sim.board(5).received == [] and sim.board(5).brightness == 100


# -- the line ---------------------------------------------------------------------------------------
def test_port_down_fails_the_whole_line_transiently_and_fast(make_adapter: Any) -> None:
    url = f"socket://127.0.0.1:{free_port()}"
    adapter = make_adapter()
    began = time.monotonic()
    results = adapter.send([outgoing(device(f"{url}#{n}"), "led_clear") for n in (1, 2, 3)])
    assert time.monotonic() - began < 5
    assert [r.outcome for r in results] == [Outcome.FAILED] * 3 and all(r.transient for r in results)
    assert all(f"serial port {url} unavailable" in (r.reason or "") for r in results)
    assert not adapter.health().ok


def test_port_comes_back(make_sim: Any, make_adapter: Any) -> None:
    port = free_port()
    adapter = make_adapter()
    dev = device(f"socket://127.0.0.1:{port}#5")
    assert one(adapter, dev, "led_clear").transient
    make_sim([5], port=port)
    assert one(adapter, dev, "led_clear").outcome is Outcome.ACKED
    assert adapter.health().ok


def test_simulator_restart_mid_session(make_sim: Any, make_adapter: Any) -> None:
    sim = make_sim([5])
    adapter, dev = make_adapter(), device(sim.address(5))
    assert one(adapter, dev, "led_clear").outcome is Outcome.ACKED
    port = sim.port
    sim.stop()
    r = one(adapter, dev, "led_clear")
    assert r.outcome is Outcome.FAILED and r.transient
    make_sim([5], port=port)
    assert one(adapter, dev, "led_clear").outcome is Outcome.ACKED  # the port was reopened


def test_buses_are_served_side_by_side(make_sim: Any, make_adapter: Any) -> None:
    a, b = make_sim([SimBoard(1, silent=True)]), make_sim([SimBoard(2, silent=True), SimBoard(3)])
    adapter = make_adapter(timeout_s=1.5)
    began = time.monotonic()
    results = {r.device_id: r for r in adapter.send([outgoing(device(a.address(1), device_id="a1"), "led_clear"),
                                                     outgoing(device(b.address(2), device_id="b2"), "led_clear"),
                                                     outgoing(device(b.address(3), device_id="b3"), "led_clear")])}
    took = time.monotonic() - began
    assert results["b3"].outcome is Outcome.ACKED
    assert results["a1"].reason == results["b2"].reason == "no reply within 1.5 s"
    assert took < 2.7, f"two silent boards on two lines took {took:.2f}s: lines were not served in parallel"


def test_retries_per_frame(make_sim: Any, make_adapter: Any) -> None:
    sim = make_sim([SimBoard(5, corrupt_next_n=2)])
    r = one(make_adapter(retries_per_frame=2), device(sim.address(5)), "led_clear")
    assert r.outcome is Outcome.ACKED and len(sim.board(5).received) == 3
    sim.set_faults(5, corrupt_next_n=5)
    r = one(make_adapter(retries_per_frame=1), device(sim.address(5)), "led_clear")
    assert r.transient and "checksum" in (r.reason or "") and "(2 frames sent)" in (r.reason or "")


def test_keep_open_false_reconnects_per_transaction(make_sim: Any, make_adapter: Any) -> None:
    sim = make_sim([5])
    adapter, dev = make_adapter(keep_open=False), device(sim.address(5))
    for _ in range(3):
        assert one(adapter, dev, "led_clear").outcome is Outcome.ACKED
    assert wait_until(lambda: sim.connections == 3)


class _EchoingLine:
    """A line whose adapter hears its own frames (2-wire RS-485 without echo suppression)
    before the board's reply."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            reader = FrameReader()
            while data := conn.recv(4096):
                for frame in reader.feed(data):
                    assert isinstance(frame, Frame)
                    conn.sendall(encode_frame(frame) + encode_frame(Frame(frame.address, p.REPLY | frame.command,
                                                                          b"\x00")))

    def close(self) -> None:
        self.server.close()
        self._thread.join(5)


def test_own_echo_is_skipped(make_adapter: Any) -> None:
    line = _EchoingLine()
    adapter = make_adapter()
    try:
        assert one(adapter, device(f"{line.url}#9"), "led_clear").outcome is Outcome.ACKED
    finally:
        adapter.close()
        line.close()


def test_processes_take_turns_through_the_lock_file(make_sim: Any, make_adapter: Any, tmp_path: Path) -> None:
    sim = make_sim([5])
    adapter = make_adapter(lock_dir=str(tmp_path))
    dev = device(sim.address(5))
    assert one(adapter, dev, "led_clear").outcome is Outcome.ACKED
    [lock_file] = list(tmp_path.glob("*.lock"))
    fd = os.open(lock_file, os.O_RDWR)  # another open file description: like another process
    fcntl.flock(fd, fcntl.LOCK_EX)
    done: list[Result] = []
    worker = threading.Thread(target=lambda: done.append(one(adapter, dev, "led_clear")))
    try:
        worker.start()
        time.sleep(0.5)
        assert not done, "the transaction ran while another holder had the bus"
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    worker.join(10)
    assert done and done[0].outcome is Outcome.ACKED


# -- status ----------------------------------------------------------------------------------------
def test_poller_reports_status_and_presence(make_sim: Any, make_adapter: Any) -> None:
    sim = make_sim([SimBoard(5, status_faults={"overheat"}, firmware="2.0.1"), SimBoard(6)])
    listener = make_adapter(poll_interval_s=3600, offline_after=2)  # cycles driven by poll_now()
    sink = RecordingSink()
    a5, a6 = sim.address(5), sim.address(6)
    listener.watch([device(a5), device(a6), device("no hash here")])  # a bad address is skipped, logged
    listener.listen(sink)  # the first cycle runs at once, then every poll_interval_s
    assert wait_until(lambda: bool(sink.statuses_for(a5) and sink.statuses_for(a6)))
    [st5] = sink.statuses_for(a5)
    assert (st5["brightness"], st5["faults"], st5["firmware"], st5["activity"]) == (100, ["overheat"], "2.0.1", "idle")
    assert sink.vendors == {"serial_led"}
    sim.set_faults(6, silent=True)
    listener.poll_now()
    assert sink.presence_for(a6) == []  # one miss is not yet offline
    listener.poll_now()
    listener.poll_now()
    assert sink.presence_for(a6) == [False]  # reported once, not on every miss
    sim.set_faults(6, silent=False)
    listener.poll_now()
    assert sink.statuses_for(a6)[-1]["online"] is True


def test_watch_is_the_whole_list(make_sim: Any, make_adapter: Any) -> None:
    one_bus, other_bus = make_sim([5, 6]), make_sim([7])
    listener = make_adapter(poll_interval_s=3600)
    sink = RecordingSink()
    listener.watch([device(one_bus.address(5)), device(one_bus.address(6)), device(other_bus.address(7))])
    listener.listen(sink)
    everyone = {one_bus.address(5), one_bus.address(6), other_bus.address(7)}
    assert wait_until(lambda: {a for a, _ in sink.statuses} == everyone)
    assert set(BUSES.urls()) == {one_bus.url, other_bus.url}
    listener.watch([device(one_bus.address(6))])  # 5 disabled, 7 removed: the hub sends the new whole list
    sink.statuses.clear()
    listener.poll_now()
    assert {a for a, _ in sink.statuses} == {one_bus.address(6)}
    assert BUSES.urls() == [one_bus.url]  # nobody watches the other line any more: its port is let go


def test_without_watch_the_boards_sent_to_in_this_process_are_polled(make_sim: Any, make_adapter: Any) -> None:
    sim = make_sim([5, 6])
    sender, listener = make_adapter(), make_adapter(poll_interval_s=3600)
    sink = RecordingSink()
    listener.listen(sink)  # an older core: listen() without watch()
    assert one(sender, device(sim.address(5)), "set_brightness", {"level": 40}).outcome is Outcome.ACKED
    listener.poll_now()
    # One bus per process: the listener polls what the sender used (its first cycle, at listen(),
    # may or may not have come after the send).
    assert sink.statuses_for(sim.address(5)) and {s["brightness"] for s in sink.statuses_for(sim.address(5))} == {40}
    assert sink.statuses_for(sim.address(6)) == []


def test_a_board_that_answers_no_polls_goes_offline(make_sim: Any, make_adapter: Any) -> None:
    sim = make_sim([SimBoard(5, no_status=True)])
    adapter = make_adapter(poll_interval_s=3600, offline_after=1)
    sink = RecordingSink()
    adapter.watch([device(sim.address(5))])
    adapter.listen(sink)
    assert one(adapter, device(sim.address(5)), "led_clear").outcome is Outcome.ACKED
    adapter.poll_now()
    assert sink.presence_for(sim.address(5)) == [False] and sink.statuses == []  # once, however many cycles


def test_poller_runs_by_itself_and_stops(make_sim: Any, make_adapter: Any) -> None:
    sim = make_sim([5])
    adapter = make_adapter(poll_interval_s=0.1)
    sink = RecordingSink()
    adapter.listen(sink)
    adapter.watch([device(sim.address(5))])
    assert wait_until(lambda: len(sink.statuses_for(sim.address(5))) >= 3, timeout=10)
    adapter.close()
    assert BUSES.urls() == []
    seen = len(sink.statuses)
    time.sleep(0.4)
    assert len(sink.statuses) == seen


def test_no_polling_when_turned_off(make_adapter: Any) -> None:
    adapter = make_adapter(poll_interval_s=0)
    adapter.listen(RecordingSink())
    with pytest.raises(RuntimeError, match="poller"):
        adapter.poll_now()


def test_poller_gives_up_on_a_dead_line_once_per_cycle(make_adapter: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import serial

    opens: list[str] = []

    def unreachable(url: str, **kw: Any) -> Any:
        opens.append(url)  # a converter that is down: each open costs a connect timeout
        raise serial.SerialException(f"could not open port {url}: timed out")

    monkeypatch.setattr(serial, "serial_for_url", unreachable)
    url = "socket://192.0.2.1:4001"  # never dialled: the open is faked
    adapter = make_adapter(poll_interval_s=3600, offline_after=1)
    sink = RecordingSink()
    adapter.watch([device(f"{url}#{n}") for n in (1, 2, 3)])
    adapter.listen(sink)
    assert wait_until(lambda: len(sink.presence_events) == 3)
    assert sorted(sink.presence_events) == [(f"{url}#{n}", False) for n in (1, 2, 3)]
    assert opens == [url] and sink.statuses == []
