"""The simulator as a fleet: scale, fault switches over the wire, command line."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hub.testing import time_scale
from hub.vendor import Outcome

from hub_mqtt_speaker.adapter import MqttSpeakerAdapter
from hub_mqtt_speaker.device import SimDevice
from hub_mqtt_speaker.simulator import Fleet
from mqtt_speaker_helpers import RecordingSink, clear_retained, envelope, outgoing, wait_until

MakeFleet = Callable[..., Fleet]


def test_500_devices_connect_from_one_thread(make_fleet: MakeFleet, listening: MqttSpeakerAdapter,
                                             sink: RecordingSink, token: str) -> None:
    threads_before = set(threading.enumerate())  # threads of earlier tests may end meanwhile
    addresses = [f"M{token}-{i:04d}" for i in range(500)]
    kinds = ["speaker", "led_board"]
    fleet = make_fleet([SimDevice(a, kind=kinds[i % 2]) for i, a in enumerate(addresses)], start=False,
                       status_interval=30.0)
    began = time.monotonic()
    fleet.start(timeout=60)
    took = time.monotonic() - began
    assert took < 30, f"500 devices took {took:.1f}s to connect"
    assert fleet.connected_count() == 500
    started = [t for t in threading.enumerate() if t not in threads_before]
    assert len(started) == 1, started  # one loop thread, not one per device
    # Every device said hello (retained online "1" plus its first status) through the broker.
    assert sink.wait(lambda: len({a for a, on in sink.presence_events if on}) == 500, timeout=20)
    assert sink.wait(lambda: len({a for a, _ in sink.statuses}) == 500, timeout=20)
    # ... and every one of them answers a batch.
    envs = {a: envelope("power", {"on": True}) for a in addresses}
    results = listening.send([outgoing(a, e, kind=kinds[i % 2]) for i, (a, e) in enumerate(envs.items())])
    assert all(r.outcome is Outcome.PENDING for r in results)
    assert sink.wait(lambda: len(sink.acks) >= 500, timeout=20), f"{len(sink.acks)} acks"


def test_silent_device_never_answers(make_fleet: MakeFleet, listening: MqttSpeakerAdapter,
                                     sink: RecordingSink, token: str) -> None:
    quiet, chatty = f"Q{token}", f"C{token}"
    fleet = make_fleet([SimDevice(quiet, silent=True), SimDevice(chatty)], status_interval=0.2)
    a, b = envelope("set_volume", {"level": 9}), envelope("set_volume", {"level": 9})
    listening.send([outgoing(quiet, a), outgoing(chatty, b)])
    assert sink.wait(lambda: sink.ack_by_id(b.command_id) is not None)
    time.sleep(0.6)
    assert sink.ack_by_id(a.command_id) is None
    assert sink.statuses_for(quiet) == []
    assert len(sink.statuses_for(chatty)) >= 2  # heartbeats every 0.2 s
    assert fleet.device(quiet).command(a.command_id) is not None  # it did receive it


def test_ack_delay_and_no_heartbeat_switches(make_fleet: MakeFleet, listening: MqttSpeakerAdapter,
                                             sink: RecordingSink, token: str) -> None:
    slow = f"D{token}"
    fleet = make_fleet([SimDevice(slow, ack_delay_s=1.0, no_heartbeat=True)], status_interval=0.1)
    assert sink.wait(lambda: len(sink.statuses_for(slow)) >= 1)  # the one sent on connect
    time.sleep(0.5)
    assert len(sink.statuses_for(slow)) == 1  # no heartbeats
    env = envelope("set_volume", {"level": 77})
    began = time.monotonic()
    listening.send([outgoing(slow, env)])
    assert sink.wait(lambda: sink.ack_by_id(env.command_id) is not None, timeout=5)
    assert time.monotonic() - began >= 0.9
    # Switches flip at run time too.
    fleet.set_faults(slow, ack_delay_s=0.0, reject_all=True)
    env2 = envelope("set_volume", {"level": 1})
    listening.send([outgoing(slow, env2)])
    assert sink.wait(lambda: sink.ack_by_id(env2.command_id) is not None, timeout=2)
    assert sink.ack_by_id(env2.command_id).reason == "device fault"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        fleet.set_faults(slow, nonsense=True)


def test_start_times_out_cleanly_without_broker(token: str) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fleet = Fleet("127.0.0.1", port, "hubtest/nobroker", [SimDevice(f"N{token}")])
    threads_before = threading.active_count()
    with pytest.raises(TimeoutError, match="0 of 1"):
        fleet.start(timeout=1.0)
    assert wait_until(lambda: threading.active_count() <= threads_before, timeout=5)


def _run_cli(args: list[str], log: Path) -> subprocess.Popen[str]:
    # stderr to a file, not a pipe nobody reads: a child whose pipe fills blocks on its next write
    # and never exits (seen under stress-ng, when the simulator logs more than usual)
    # PYTHONFAULTHANDLER: a child that must be stopped with SIGABRT writes where each thread stood
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
    with open(log, "w", encoding="utf-8") as err:
        return subprocess.Popen([sys.executable, "-m", "hub_mqtt_speaker.simulator", *args], stdout=subprocess.PIPE,
                                stderr=err, text=True, env=env)


def _await_line(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    """The first line the process prints; what follows is read and dropped, for the same reason."""
    first = threading.Event()
    result: list[str] = []
    stdout = proc.stdout
    assert stdout is not None

    def drain() -> None:
        for line in stdout:
            if not result:
                result.append(line)
                first.set()
        first.set()

    threading.Thread(target=drain, daemon=True).start()
    first.wait(timeout)
    return result[0] if result else ""


def test_cli_count_and_fleet_file(broker: tuple[str, int], prefix: str, token: str, tmp_path: Path,
                                  listening: MqttSpeakerAdapter, sink: RecordingSink) -> None:
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(f"address,kind\nF{token}-1,speaker\nF{token}-2,led_board\n", encoding="utf-8")
    runs = [
        ["--count", "3", "--address-format", f"K{token}-{{:02d}}"],
        ["--fleet", str(csv_file), "--silent", f"F{token}-1"],
    ]
    addresses = [f"K{token}-{i:02d}" for i in (1, 2, 3)] + [f"F{token}-1", f"F{token}-2"]
    logs = [tmp_path / f"sim-{i}.log" for i in range(len(runs))]
    procs = [_run_cli(["--host", broker[0], "--port", str(broker[1]), "--prefix", prefix,
                       "--status-interval", "1", *r], log) for r, log in zip(runs, logs)]
    try:
        lines = [_await_line(p) for p in procs]
        assert "3 devices connected" in lines[0], (lines, procs[0].poll())
        assert "2 devices connected" in lines[1], (lines, procs[1].poll())
        assert sink.wait(lambda: {a for a, on in sink.presence_events if on} >= set(addresses))
        led = envelope("led_show", {"text": "Thông báo"})
        mute = envelope("set_volume", {"level": 0})
        listening.send([outgoing(f"F{token}-2", led, kind="led_board"), outgoing(f"F{token}-1", mute)])
        assert sink.wait(lambda: sink.ack_by_id(led.command_id) is not None)
        time.sleep(0.3)
        assert sink.ack_by_id(mute.command_id) is None  # --silent
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        codes = []
        for p in procs:
            try:
                # Fleet.stop may take 2 x its 10 s timeout + 2 s before it drops what did not disconnect
                codes.append(p.wait(30 * time_scale()))
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGABRT)  # its threads' tracebacks go to its log (faulthandler)
                try:
                    codes.append(p.wait(5))
                except subprocess.TimeoutExpired:
                    p.kill()
                    codes.append(p.wait(5))
        clear_retained(broker[0], broker[1], [f"{prefix}/{a}/online" for a in addresses])
    assert codes == [0, 0], [log.read_text(encoding="utf-8")[-3000:] for log in logs]
