"""Live broadcast groundwork against a real Debian icecast2 on loopback: ffmpeg pushes generated
tones, a listener reads the stream like a speaker does, and the dead-air watcher listens too."""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from hub.broadcast.dead_air import NO_BYTES, SILENCE, DeadAirDetector, DeadAirWatcher
from hub.broadcast.icecast import IcecastServer, icecast_binary

needs_icecast = pytest.mark.skipif(
    icecast_binary() is None or shutil.which("ffmpeg") is None,
    reason="needs Debian's icecast2 and ffmpeg (scripts/services.sh installs both)")

MP3 = ["-c:a", "libmp3lame", "-b:a", "64k", "-ar", "44100", "-ac", "1",
       "-content_type", "audio/mpeg", "-f", "mp3"]


@pytest.fixture
def icecast() -> Iterator[IcecastServer]:
    server = IcecastServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sources() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def push(started: list[subprocess.Popen[bytes]], url: str, lavfi: str) -> subprocess.Popen[bytes]:
    """An Icecast source client: ffmpeg playing a generated signal in real time."""
    p = subprocess.Popen(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
                          "-f", "lavfi", "-i", lavfi, *MP3, url],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started.append(p)
    return p


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Listener:
    """A speaker's view of a mount: one HTTP connection, counting the bytes that arrive."""

    def __init__(self, url: str) -> None:
        self.resp = urllib.request.urlopen(url, timeout=5)
        self.received = 0
        self.closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = self.resp.read1(4096)
                if not chunk:
                    break
                self.received += len(chunk)
        except OSError:
            pass
        self.closed = not self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        self.resp.close()
        self._thread.join(5)


@needs_icecast
def test_listener_moves_to_the_fallback_without_being_disconnected(icecast, sources) -> None:
    fallback = icecast.add_mount("/fallback")
    live = icecast.add_mount("/live-1", fallback="/fallback")
    live_source = push(sources, icecast.source_url(live), "sine=frequency=440")
    push(sources, icecast.source_url(fallback), "sine=frequency=880")
    wait_for(lambda: {"/live-1", "/fallback"} <= set(icecast.stats()), 10, "both sources on air")

    listener = Listener(icecast.listen_url(live))
    try:
        wait_for(lambda: listener.received > 8000, 10, "the live stream")
        assert icecast.mount_stats(live).listeners == 1

        live_source.terminate()
        live_source.wait(5)
        wait_for(lambda: (icecast.mount_stats(fallback) or None) and icecast.mount_stats(fallback).listeners == 1,
                 10, "the listener on the fallback mount")
        before = listener.received
        # 64 kbit/s is 8 kB/s: two seconds more of the fallback tone on the same connection
        wait_for(lambda: listener.received > before + 12000, 10, "bytes from the fallback")
        assert not listener.closed, "the listener was disconnected instead of moved to the fallback"
        # Icecast refreshes its byte counters every few seconds, not on each read
        wait_for(lambda: icecast.mount_stats(fallback).bytes_sent > 0, 10, "bytes sent in the fallback's stats")
    finally:
        listener.stop()


@needs_icecast
def test_a_mount_takes_only_its_own_source_password(icecast, sources) -> None:
    first = icecast.add_mount("/live-a")
    second = icecast.add_mount("/live-b")
    assert first.source_password != second.source_password
    wrong = icecast.source_url(first).replace(first.source_password, second.source_password)
    intruder = push(sources, wrong, "sine=frequency=440")
    assert intruder.wait(10) != 0
    assert b"401" in intruder.stderr.read()
    assert "/live-a" not in icecast.stats()


@needs_icecast
def test_watcher_reports_a_source_gone_silent(icecast, sources) -> None:
    live = icecast.add_mount("/live-quiet")
    # two seconds of tone, then silence for ever: still bytes on the wire, nothing to hear
    push(sources, icecast.source_url(live), "sine=frequency=440:duration=2,apad")
    wait_for(lambda: "/live-quiet" in icecast.stats(), 10, "the source on air")
    with DeadAirWatcher(icecast.listen_url(live), live.name, threshold_s=1.5) as watcher:
        event = wait_for(lambda: watcher.events[:1], 15, "a dead-air report")[0]
        assert (event.mount, event.reason) == ("/live-quiet", SILENCE)
        assert watcher.bytes_total > 0


@needs_icecast
def test_watcher_reports_a_mount_with_no_bytes(icecast, sources) -> None:
    live = icecast.add_mount("/live-gone")  # no fallback: when its source stops, the mount ends
    source = push(sources, icecast.source_url(live), "sine=frequency=440")
    wait_for(lambda: "/live-gone" in icecast.stats(), 10, "the source on air")
    with DeadAirWatcher(icecast.listen_url(live), live.name, threshold_s=1.5) as watcher:
        wait_for(lambda: watcher.bytes_total > 4000, 10, "audio reaching the watcher")
        assert watcher.events == []
        source.terminate()
        event = wait_for(lambda: watcher.events[:1], 10, "a dead-air report")[0]
        assert event.reason == NO_BYTES


def test_detector_reports_each_episode_once_and_again_after_recovery() -> None:
    now = [100.0]
    d = DeadAirDetector("/m", threshold_s=5, clock=lambda: now[0])
    d.bytes_received(100)
    now[0] = 104.9
    assert d.check() is None
    now[0] = 105.0
    first = d.check()
    assert first is not None and (first.reason, first.since) == (NO_BYTES, 100.0)
    now[0] = 107.0
    assert d.check() is None  # the same episode is not reported twice
    d.bytes_received(10)
    assert d.check() is None  # recovered
    d.silence_started()  # silencedetect speaks once silence has lasted the threshold
    second = d.check()
    assert second is not None and (second.reason, second.since) == (SILENCE, 102.0)
    d.silence_ended()
    assert d.check() is None


@needs_icecast
def test_stop_ends_icecast_and_removes_its_passwords_from_disk() -> None:
    server = IcecastServer().start()
    state_dir, url = server.state_dir, server.listen_url("/anything")
    assert server.config_path.stat().st_mode & 0o077 == 0  # passwords readable by icecast's user only
    server.stop()
    assert not server.running()
    assert not state_dir.exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)
