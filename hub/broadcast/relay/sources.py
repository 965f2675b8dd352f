"""What feeds the hub's Icecast: ffmpeg processes, and the fallback audio.

Every source is transcoded to one format (MP3, mono, 44.1 kHz, `relay_bitrate_kbps`), whatever the
upstream sends: a device gets the same kind of stream from a station, a recorded bulletin or the
fallback, and a listener moved from one mount to the other by Icecast keeps decoding.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# A station is a web stream: ffmpeg must not read files or other protocols the URL could name
_STATION_PROTOCOLS = "http,https,tcp,tls"


class SourceError(RuntimeError):
    """ffmpeg is missing, or the fallback audio could not be made."""


def ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        raise SourceError("ffmpeg is not installed (apt-get install ffmpeg; scripts/services.sh does it)")
    return found


def _encode(kbps: int, target: str) -> list[str]:
    return ["-vn", "-c:a", "libmp3lame", "-b:a", f"{kbps}k", "-ar", "44100", "-ac", "1",
            "-content_type", "audio/mpeg", "-f", "mp3", target]


def station_command(url: str, target: str, kbps: int, stall_s: float) -> list[str]:
    """Pull a station and push it to `target` (an icecast:// source URL). A station that stops
    sending for `stall_s` ends the process, so listeners fall back instead of hearing nothing."""
    return [ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error",
            "-protocol_whitelist", _STATION_PROTOCOLS, "-rw_timeout", str(int(stall_s * 1_000_000)),
            "-i", url, *_encode(kbps, target)]


def file_command(path: Path, target: str, kbps: int, loop: bool = False) -> list[str]:
    """Play a file in real time (-re) to `target`, once or for ever."""
    return [ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
            *(["-stream_loop", "-1"] if loop else []), "-i", str(path), *_encode(kbps, target)]


def start(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Run a source, its errors into `log_path` (a pipe nobody reads would fill and stall it)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def log_tail(path: Path, limit: int = 400) -> str:
    try:
        return " ".join(path.read_text(errors="replace")[-limit:].split())
    except OSError:
        return ""


def default_fallback(directory: Path) -> Path:
    """A ten-second loop of soft beeps (0.6 s every 2 s), made once with ffmpeg: audible, so that a
    listener knows the relay is alive but its source is away, and never silent for long enough to
    count as dead air itself. Generated, not shipped: no media in the repository."""
    path = directory / "fallback.mp3"
    if path.exists() and path.stat().st_size > 0:
        return path
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp3")
    done = subprocess.run([ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                           "-i", "aevalsrc=0.25*sin(2*PI*660*t)*lt(mod(t\\,2)\\,0.6):s=44100:d=10",
                           "-c:a", "libmp3lame", "-b:a", "64k", "-ac", "1", str(tmp)],
                          capture_output=True, timeout=60)
    if done.returncode != 0:
        raise SourceError(f"could not make the fallback audio: {done.stderr.decode(errors='replace')[-300:]}")
    tmp.replace(path)
    return path
