"""A station for relay tests: its own Icecast on loopback with ffmpeg pushing a generated signal,
as far from the hub as another broadcaster would be (another process, another port)."""
from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

from hub.broadcast.icecast import IcecastServer, icecast_binary
from hub.testing import scaled

needs_icecast = pytest.mark.skipif(
    icecast_binary() is None or shutil.which("ffmpeg") is None,
    reason="needs Debian's icecast2 and ffmpeg (scripts/services.sh installs both)")

MP3 = ["-c:a", "libmp3lame", "-b:a", "64k", "-ar", "44100", "-ac", "1", "-content_type", "audio/mpeg", "-f", "mp3"]


class Station:
    """An upstream station: `start(signal)` puts a generated signal on air at `url`, `stop()` ends it."""

    def __init__(self) -> None:
        self.icecast = IcecastServer().start()
        self.mount = self.icecast.add_mount("/station")
        self.url = self.icecast.listen_url(self.mount)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, lavfi: str = "sine=frequency=440") -> None:
        self.proc = subprocess.Popen(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
                                      "-f", "lavfi", "-i", lavfi, *MP3, self.icecast.source_url(self.mount)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: "/station" in self.icecast.stats(), 10, "the station on air")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def close(self) -> None:
        self.stop()
        self.icecast.stop()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {scaled(timeout):g}s waiting for {what}")
