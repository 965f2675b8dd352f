"""Dead air on a mount: no bytes, or only silence, for longer than a threshold.

Relays that fall silent instead of falling back are what playout users complain of most; the hub
listens to each mount it carries the way a speaker does and says so when nothing audible comes.

`DeadAirDetector` holds the rule and an injectable clock (bytes seen, silence started or ended →
at most one report per episode); `DeadAirWatcher` feeds it from a real listener: it reads the mount
over HTTP, pipes the bytes into `ffmpeg -af silencedetect`, and checks the detector every tick.

Layer: broadcast.
"""
from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

NO_BYTES = "no_bytes"
SILENCE = "silence"


@dataclass(frozen=True)
class DeadAir:
    """One episode of dead air: which mount, why, and since when (the detector's clock)."""

    mount: str
    reason: str  # NO_BYTES or SILENCE
    since: float


class DeadAirDetector:
    """The rule, without I/O: dead air once no bytes came for `threshold_s`, or silence was heard
    for `threshold_s` (ffmpeg's silencedetect reports silence only once it lasted that long)."""

    def __init__(self, mount: str, threshold_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.mount = mount
        self.threshold_s = threshold_s
        self.clock = clock
        self.last_bytes = clock()
        self.silent_since: float | None = None
        self.current: DeadAir | None = None  # the episode under way, reported once

    def bytes_received(self, n: int) -> None:
        if n > 0:
            self.last_bytes = self.clock()

    def silence_started(self) -> None:
        if self.silent_since is None:
            # silencedetect speaks after threshold_s of silence: the episode began that long ago
            self.silent_since = self.clock() - self.threshold_s

    def silence_ended(self) -> None:
        self.silent_since = None

    def check(self) -> DeadAir | None:
        """A new episode when dead air begins (None while it lasts, or while all is well)."""
        now = self.clock()
        if now - self.last_bytes >= self.threshold_s:
            found = DeadAir(self.mount, NO_BYTES, self.last_bytes)
        elif self.silent_since is not None:
            found = DeadAir(self.mount, SILENCE, self.silent_since)
        else:
            self.current = None  # recovered: the next episode is reported again
            return None
        if self.current is not None and self.current.reason == found.reason:
            return None
        self.current = found
        return found


_SILENCE_START = re.compile(rb"silence_start:")
_SILENCE_END = re.compile(rb"silence_end:")


class DeadAirWatcher:
    """Listens to `url` like a device and calls `on_dead_air` for each episode of dead air.

    Threads: one reads the stream into ffmpeg, one reads ffmpeg's silencedetect lines, one ticks
    the detector. `stop()` ends them all and the ffmpeg it started.
    """

    def __init__(self, url: str, mount: str, threshold_s: float = 5.0, noise_db: float = -50.0,
                 on_dead_air: Callable[[DeadAir], None] | None = None, tick_s: float = 0.2) -> None:
        self.url = url
        self.detector = DeadAirDetector(mount, threshold_s)
        self.noise_db = noise_db
        self.tick_s = tick_s
        self.events: list[DeadAir] = []
        self._on_dead_air = on_dead_air
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ffmpeg: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []
        self.bytes_total = 0

    def start(self) -> "DeadAirWatcher":
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise RuntimeError("ffmpeg is not installed: dead air cannot be heard")
        self._ffmpeg = subprocess.Popen(
            [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
             "-i", "pipe:0", "-af", f"silencedetect=noise={self.noise_db}dB:d={self.detector.threshold_s}",
             "-f", "null", "-"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for target in (self._read_stream, self._read_ffmpeg, self._tick):
            t = threading.Thread(target=target, name=f"dead-air {self.detector.mount}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    @property
    def reading(self) -> bool:
        """Whether it still listens: its connection ends when the mount goes away for good."""
        return bool(self._threads) and self._threads[0].is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._ffmpeg is not None:
            if self._ffmpeg.stdin:
                try:
                    self._ffmpeg.stdin.close()
                except OSError:
                    pass
            try:
                self._ffmpeg.wait(5)
            except subprocess.TimeoutExpired:
                self._ffmpeg.kill()
                self._ffmpeg.wait(5)
        for t in self._threads:
            t.join(5)

    def __enter__(self) -> "DeadAirWatcher":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _read_stream(self) -> None:
        assert self._ffmpeg is not None and self._ffmpeg.stdin is not None
        try:
            with urllib.request.urlopen(self.url, timeout=max(2.0, self.detector.threshold_s)) as resp:
                while not self._stop.is_set():
                    chunk = resp.read1(4096)
                    if not chunk:
                        break  # the mount closed: no bytes from now on, the detector will say so
                    with self._lock:
                        self.bytes_total += len(chunk)
                        self.detector.bytes_received(len(chunk))
                    self._ffmpeg.stdin.write(chunk)
                    self._ffmpeg.stdin.flush()
        except (OSError, ValueError) as e:  # refused, timed out, ffmpeg gone (or closed by stop())
            if not self._stop.is_set():
                log.info("dead-air watcher on %s stopped reading: %s", self.url, e)

    def _read_ffmpeg(self) -> None:
        assert self._ffmpeg is not None and self._ffmpeg.stderr is not None
        for line in self._ffmpeg.stderr:
            with self._lock:
                if _SILENCE_START.search(line):
                    self.detector.silence_started()
                elif _SILENCE_END.search(line):
                    self.detector.silence_ended()

    def _tick(self) -> None:
        while not self._stop.wait(self.tick_s):
            with self._lock:
                found = self.detector.check()
            if found is not None:
                log.warning("dead air on %s: %s", found.mount, found.reason)
                self.events.append(found)
                if self._on_dead_air is not None:
                    self._on_dead_air(found)
