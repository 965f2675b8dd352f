"""A real pseudo-terminal made by socat: the adapter opens a tty device path exactly as it
would open /dev/ttyUSB0. socat missing is a failure, not a skip."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hub.plugins import Plugins
from hub.vendor import Outcome

from hub_serial_led import protocol as p
from hub_serial_led.adapter import SerialLedAdapter
from hub_serial_led.simulator import SerialBoardsSim, SimBoard, SocatMissing
from serial_led_helpers import await_line, device, outgoing, require_socat, stop_child, wait_until

URGENT = "Thông báo khẩn"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes; Popen.wait in stop() reaps it anyway.
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split()[2] != "Z"


def _shown(board: SimBoard) -> bytes:
    """The last show-text payload the board got (the poller's status queries come in between)."""
    return [payload for command, payload in board.received if command == p.SHOW_TEXT][-1]


def test_hub_drives_boards_on_a_socat_pty(make_sim: Any, make_hub: Any) -> None:
    require_socat()
    sim = make_sim([5, SimBoard(6, unicode=False)], transport="pty")
    assert sim.pty is not None and sim.pty.startswith("/dev/") and sim.url == sim.pty
    socat_pid = sim._proc.pid  # noqa: SLF001 - checked below to be gone after stop()
    hub = make_hub(poll_interval_s=0.2)
    hub.add_device("P5", f"{sim.pty}#5", kind="led_board")
    hub.add_device("P6", f"{sim.pty}#6", kind="led_board", config={"unicode": False})

    got = hub.wait(hub.send("led_show", ["P5", "P6"], {"text": URGENT}).command.id)
    assert {k: (o.state, o.attempts) for k, o in got.items()} == {"P5": ("acked", 1), "P6": ("acked", 1)}
    assert _shown(sim.board(5)) == b"\x01" + URGENT.encode("utf-8") and sim.board(5).text == URGENT
    assert _shown(sim.board(6)) == b"\x01Thong bao khan"

    got = hub.wait(hub.send("set_brightness", ["P5"], {"level": 45}).command.id)
    assert got["P5"].state == "acked" and sim.board(5).brightness == 45
    st = hub.wait_status("P5", lambda s: s["brightness"] == 45)
    assert st is not None and st["brightness"] == 45 and st["activity"] == "showing", st

    sim.set_faults(5, corrupt_next_n=1)
    got = hub.wait(hub.send("led_clear", ["P5"]).command.id)
    assert got["P5"].state == "acked" and 1 <= got["P5"].attempts <= 2  # a poll may have taken the bad reply

    hub.stop()
    sim.stop()
    assert wait_until(lambda: not _alive(socat_pid), timeout=10), "socat outlived the simulator"
    assert not os.path.exists(sim.pty) or not os.path.islink(sim.pty)


def test_factory_serves_device_paths_through_a_socat_link(plugins: Plugins, tmp_path: Path, lock_dir: str) -> None:
    require_socat()
    link = str(tmp_path / "ttyLED0")
    devices = [device(f"{link}#3"), device(f"{link}#4", unicode=False)]
    group = plugins.simulators()["serial_led"]({}, devices)
    adapter = SerialLedAdapter({"lock_dir": lock_dir})
    try:
        group.start()
        assert os.path.islink(link)
        results = adapter.send([outgoing(d, "led_show", {"text": URGENT}) for d in devices])
        assert [r.outcome for r in results] == [Outcome.ACKED, Outcome.ACKED], results
        assert group.board(f"{link}#3").text == URGENT
        assert group.board(f"{link}#4").text == "Thong bao khan"
    finally:
        adapter.close()
        group.stop()
    assert not os.path.lexists(link)


def test_refuses_to_replace_an_existing_path(tmp_path: Path) -> None:
    require_socat()
    taken = tmp_path / "ttyUSB0"
    taken.write_text("a real device node would be here")
    with pytest.raises(FileExistsError, match="will not replace"):
        SerialBoardsSim([1], transport="pty", link=str(taken)).start()
    assert taken.read_text() == "a real device node would be here"


def test_missing_socat_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SocatMissing, match="socat is not installed"):
        SerialBoardsSim([1], transport="pty").start()


def test_cli_on_a_pty(lock_dir: str) -> None:
    require_socat()
    proc = subprocess.Popen([sys.executable, "-m", "hub_serial_led.simulator", "--pty", "--boards", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    adapter = SerialLedAdapter({"lock_dir": lock_dir})
    try:
        line = await_line(proc)
        assert line.startswith("serving boards 2 on /dev/"), (line, proc.poll())
        path = line.rsplit(" ", 1)[1].strip()
        assert adapter.send([outgoing(device(f"{path}#2"), "led_clear")])[0].outcome is Outcome.ACKED
    finally:
        adapter.close()
        code = stop_child(proc, signal.SIGTERM)
    assert code == 0, proc.stderr.read() if proc.stderr else ""
