"""Audio made at test time with ffmpeg (no binary in the repository), and a hub app served on a
loopback port for clients that speak real HTTP (simulated devices fetching media)."""
from __future__ import annotations

import re
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from werkzeug.serving import make_server


def make_audio(seconds: float = 2.0, fmt: str = "wav", frequency: int = 440) -> bytes:
    """A sine tone of `seconds` in container `fmt` (wav, ogg, mp3…), stereo 48 kHz, as a
    microphone or a studio would hand it over."""
    with tempfile.TemporaryDirectory(prefix="hubtest-audio-") as tmp:
        out = Path(tmp) / f"tone.{fmt}"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"sine=frequency={frequency}:duration={seconds}:sample_rate=48000", "-ac", "2", str(out)],
                       check=True, capture_output=True, timeout=60)
        return out.read_bytes()


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve `app` on a free loopback port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="hubtest-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def ebur128_lufs(data: bytes) -> float:
    """The integrated loudness of `data` as ffmpeg's EBU R128 meter measures it."""
    done = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", "pipe:0", "-af", "ebur128", "-f", "null", "-"],
                          input=data, capture_output=True, timeout=60, check=True)
    summary = done.stderr.decode().rpartition("Summary:")[2]
    return float(re.search(r"I:\s*(-?[\d.]+) LUFS", summary).group(1))


def closed_port() -> int:
    """A loopback port nothing listens on: a service that cannot be reached, without the internet."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
