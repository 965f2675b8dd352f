"""Real hub processes for end-to-end tests: worker and ingest as subprocesses reading the
test's HUB_CONFIG, stopped (and killed if need be) when the test ends."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HUB = [sys.executable, "-m", "hub.cli"]


class Proc:
    def __init__(self, name: str, args: list[str], config: Path, log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        env = {**os.environ, "HUB_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
        self._fh = self.log.open("wb")
        self.p = subprocess.Popen(HUB + args, env=env, stdout=self._fh, stderr=subprocess.STDOUT,
                                  start_new_session=True)

    def alive(self) -> bool:
        return self.p.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 10) -> None:
        if self.alive():
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        self._fh.close()


def wait_until(predicate: Callable[[], object], timeout: float, what: str, procs: list[Proc] = ()) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        for p in procs:
            if not p.alive():
                raise AssertionError(f"{p.name} exited early:\n{p.output()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)
