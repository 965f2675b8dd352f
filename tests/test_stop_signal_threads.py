"""A stop signal can land on any thread of a process, and the hub's processes still stop.

Linux hands a signal sent to a process to whichever of its threads does not block it. Python
runs the handler (or raises KeyboardInterrupt) on the main thread, and only when that thread
next runs: a main thread parked in a wait with no timeout never does. A busy full run saw it:
the demo ignored Ctrl-C, its main thread still in `Event().wait()` a minute later. These tests
send the signal to the threads other than the main one on purpose (tgkill), which is what
the kernel did then by chance.
"""
from __future__ import annotations

import ctypes
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.ports import free_port
from tests.support.processes import HUB, Proc, wait_until


def signal_other_threads(pid: int, sig: int) -> int:
    """Send `sig` to each of `pid`'s threads but its main one (one of them would do: all of them
    make it certain that none reaches the main thread); returns how many got it."""
    libc = ctypes.CDLL(None, use_errno=True)
    sent = 0
    for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid):
        if libc.tgkill(pid, tid, sig) == 0:
            sent += 1
        elif ctypes.get_errno() != errno.ESRCH:  # ESRCH: a short-lived thread already gone
            raise OSError(ctypes.get_errno(), f"tgkill {pid} {tid}")
    assert sent, "the process has no thread but its main one"
    return sent


def test_hub_ingest_stops_when_its_sigterm_lands_on_another_thread(config_file: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HUB_CONFIG": str(config_file)}
    assert subprocess.run([*HUB, "init-db"], env=env, capture_output=True, timeout=120).returncode == 0
    ingest = Proc("ingest", ["ingest"], config_file, tmp_path)
    try:
        wait_until(lambda: "ingest running" in ingest.output(), 60, "ingest to start", [ingest])
        signal_other_threads(ingest.p.pid, signal.SIGTERM)
        ingest.p.wait(timeout=30)  # without the fix: still running, its main thread never woken
        assert "ingest stopped" in ingest.output(), ingest.output()[-2000:]
    finally:
        ingest.stop()


@pytest.mark.slow
def test_the_demo_stops_when_its_ctrl_c_lands_on_another_thread(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HUB_")}, "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "demo", "--embedded", "--port", str(free_port()),
                             "--speakers", "3", "--boards", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, env=env)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 240
        seen = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line or line.startswith("Ctrl-C"):
                break
            seen.append(line)
        assert proc.poll() is None, "".join(seen)[-3000:]
        signal_other_threads(proc.pid, signal.SIGINT)
        try:
            rest, err = proc.communicate(timeout=60)  # without the fix: TimeoutExpired
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: where every thread was
            _, err = proc.communicate(timeout=30)
            pytest.fail("the demo did not stop within 60 s; its threads:\n" + err[-12000:])
        assert proc.returncode == 0, err[-3000:]
        assert "stopped, nothing left behind" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
