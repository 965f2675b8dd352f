"""The simulator on its own: bus behaviour, fault switches, the factory and the console script."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hub.plugins import Plugins
from hub.vendor import Outcome

from hub_serial_led import protocol as p
from hub_serial_led.adapter import SerialLedAdapter
from hub_serial_led.frame import Frame, FrameReader, encode_frame
from hub_serial_led.simulator import SerialBoardsSim, SimBoard
from serial_led_helpers import await_line, device, free_port, outgoing, stop_child, wait_until


def _exchange(url: str, raw: bytes, timeout: float = 2.0) -> list[Any]:
    host, port = url.removeprefix("socket://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(raw)
        reader, got = FrameReader(), []
        try:
            while not got:
                data = s.recv(4096)
                if not data:
                    break
                got += reader.feed(data)
        except TimeoutError:
            pass
        return got


def test_board_validation() -> None:
    with pytest.raises(ValueError, match="outside"):
        SimBoard(0)
    with pytest.raises(ValueError, match="two simulated boards"):
        SerialBoardsSim([1, SimBoard(1)])
    with pytest.raises(ValueError, match="nonsense"):
        SimBoard(1).set_faults(nonsense=True)
    with pytest.raises(ValueError, match="transport"):
        SerialBoardsSim([1], transport="carrier-pigeon")


def test_status_and_unknown_boards(make_sim: Any) -> None:
    sim = make_sim([SimBoard(5, status_faults={"door_open"}, firmware="9.9")])
    [reply] = _exchange(sim.url, encode_frame(Frame(5, p.QUERY_STATUS)))
    assert reply.command == p.REPLY | p.QUERY_STATUS
    assert p.decode_status_payload(reply.payload) == p.BoardStatus(True, False, 100, ("door_open",), "9.9")
    assert _exchange(sim.url, encode_frame(Frame(9, p.QUERY_STATUS)), timeout=0.3) == []  # nobody at 9


def test_frames_with_bad_checksums_are_ignored(make_sim: Any) -> None:
    sim = make_sim([5])
    assert _exchange(sim.url, encode_frame(Frame(5, p.CLEAR), crc=0x1234), timeout=0.3) == []
    assert wait_until(lambda: sim.bad_frames == 1)
    assert sim.board(5).received == []


@pytest.mark.parametrize("frame, code", [
    (Frame(5, 0x55), 0x01),
    (Frame(5, p.BRIGHTNESS, b""), 0x02),
    (Frame(5, p.BRIGHTNESS, b"\x65"), 0x04),
    (Frame(5, p.SHOW_TEXT, b"\x09abc"), 0x04),
    (Frame(5, p.SHOW_TEXT, b"\x00" + b"x" * 5000), 0x03),
    (Frame(5, p.SHOW_TEXT, b"\x00\xff\xfe"), 0x05),
])
def test_board_refusals(make_sim: Any, frame: Frame, code: int) -> None:
    sim = make_sim([5])
    [reply] = _exchange(sim.url, encode_frame(frame))
    assert reply.command == p.NAK and p.decode_nak(reply.payload) == (frame.command, code)


def test_factory_serves_where_the_addresses_point(plugins: Plugins, lock_dir: str) -> None:
    port = free_port()
    url = f"socket://127.0.0.1:{port}"
    devices = [device(f"{url}#1"), device(f"{url}#2", unicode="false")]
    group = plugins.simulators()["serial_led"]({"baudrate": 9600}, devices)
    adapter = SerialLedAdapter({"lock_dir": lock_dir})
    try:
        group.start()
        assert group.sims[url].port == port
        assert group.board(f"{url}#2").unicode is False
        results = adapter.send([outgoing(d, "led_show", {"text": "Bão"}) for d in devices])
        assert [r.outcome for r in results] == [Outcome.ACKED, Outcome.ACKED]
        assert group.board(f"{url}#2").text == "Bao"
    finally:
        adapter.close()
        group.stop()
    with pytest.raises(ValueError, match="only socket"):
        plugins.simulators()["serial_led"]({}, [device("rfc2217://10.0.0.1:4001#1")])


def test_console_script_is_installed() -> None:
    assert (Path(sys.executable).parent / "hub-serial-led-sim").exists()


def test_cli_on_tcp_with_faults(lock_dir: str) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hub_serial_led.simulator", "--tcp", f"127.0.0.1:{port}",
                             "--boards", "5-6", "--ascii", "6", "--fault", "5:nak_all"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    adapter = SerialLedAdapter({"lock_dir": lock_dir})
    try:
        line = await_line(proc)
        url = f"socket://127.0.0.1:{port}"
        assert line.strip() == f"serving boards 5,6 on {url}", (line, proc.poll())
        r5, r6 = adapter.send([outgoing(device(f"{url}#5"), "led_clear"),
                               outgoing(device(f"{url}#6", unicode=False), "led_show", {"text": "Lũ quét"})])
        assert r5.outcome is Outcome.FAILED and "hardware fault" in (r5.reason or "")
        assert r6.outcome is Outcome.ACKED and r6.detail is not None and r6.detail["shown"] == "Lu quet"
    finally:
        adapter.close()
        code = stop_child(proc, signal.SIGINT)
    assert code == 0, proc.stderr.read() if proc.stderr else ""


@pytest.mark.parametrize("args, problem", [
    (["--boards", "x"], "board numbers"),
    (["--fault", "5:explode"], "switch"),
    (["--boards", "1", "--fault", "2:silent"], "not in --boards"),
])
def test_cli_rejects_bad_options(args: list[str], problem: str) -> None:
    out = subprocess.run([sys.executable, "-m", "hub_serial_led.simulator", *args], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0 and problem in out.stderr


def test_factory_takes_the_hubs_fault_modes(plugins: Plugins, lock_dir: str) -> None:
    url = f"socket://127.0.0.1:{free_port()}"
    a = [f"{url}#{n}" for n in range(1, 5)]
    modes = {a[0]: {"silent"}, a[1]: {"rejects_all"}, a[2]: {"mangles_diacritics"}, a[3]: {"acks_without_acting"}}
    group = plugins.simulators()["serial_led"]({}, [device(x) for x in a], faults=modes)
    adapter = SerialLedAdapter({"lock_dir": lock_dir, "timeout_s": 0.3})
    try:
        group.start()
        results = adapter.send([outgoing(device(x, device_id=x), "led_show", {"text": "Lũ quét"}) for x in a])
        got = {r.device_id: r for r in results}
        assert got[a[0]].transient and "no reply" in (got[a[0]].reason or "")
        assert "hardware fault" in (got[a[1]].reason or "")
        assert "stored other text" in (got[a[2]].reason or "")
        assert got[a[3]].outcome is Outcome.ACKED and group.board(a[3]).text == ""
        [reply] = _exchange(url, encode_frame(Frame(2, p.QUERY_STATUS)))  # refusing commands, still reporting
        assert reply.command == p.REPLY | p.QUERY_STATUS
    finally:
        adapter.close()
        group.stop()


@pytest.mark.parametrize("mode, problem", [("misreports_volume", "cannot imitate"), ("no_heartbeat", "cannot imitate"),
                                           ("gremlins", "not a fault mode")])
def test_factory_refuses_fault_modes_it_cannot_imitate(plugins: Plugins, mode: str, problem: str) -> None:
    from hub.simulation import UnsupportedFault

    with pytest.raises(UnsupportedFault, match=problem):
        plugins.simulators()["serial_led"]({}, [device("socket://127.0.0.1:1#1")],
                                           faults={"socket://127.0.0.1:1#1": {mode}})


def test_witness_and_link_control(plugins: Plugins, lock_dir: str) -> None:
    url = f"socket://127.0.0.1:{free_port()}"
    a5 = f"{url}#5"
    group = plugins.simulators()["serial_led"]({}, [device(a5)])
    adapter = SerialLedAdapter({"lock_dir": lock_dir, "timeout_s": 0.3})
    try:
        group.start()
        assert group.observe(a5) == {"activity": "idle", "source": None, "volume": None, "brightness": 100,
                                     "power": True, "led_text": ""}
        assert adapter.send([outgoing(device(a5), "led_show", {"text": "Mưa lớn"})])[0].outcome is Outcome.ACKED
        assert (group.observe(a5)["activity"], group.observe(a5)["led_text"]) == ("showing", "Mưa lớn")
        group.cut_link(a5)
        r = adapter.send([outgoing(device(a5), "led_clear")])[0]
        assert r.transient and "no reply" in (r.reason or "") and group.observe(a5)["led_text"] == "Mưa lớn"
        group.restore_link(a5)
        assert adapter.send([outgoing(device(a5), "power", {"on": False})])[0].outcome is Outcome.ACKED
        assert group.observe(a5)["activity"] == "off"
    finally:
        adapter.close()
        group.stop()
