"""Audio work for synthesised bulletins, done by ffmpeg and ffprobe as child processes (argument
lists, never a shell, always a timeout): decode each piece to one PCM format, join the pieces,
normalise loudness to EBU R128 and encode MP3 for devices, measure what came out.

Loudness (`loudness_normalised_mp3`): espeak-ng puts its peaks at full scale, ~19 dB above its
loudness, while -16 LUFS with a true peak of -1.5 dBTP leaves only 14.5 dB; ffmpeg's loudnorm
then falls back to its dynamic mode, which on short clips misses the target by 2 LU. So peaks are
first held to 10 dB above the measured loudness by a fast limiter, and loudnorm's two passes
(measure, then apply with the measured values) can use one linear gain: the integrated loudness
lands on the target and the speech keeps its shape.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

from hub.speech import SpeechError

RATE = 24_000  # Hz: what the pieces are joined at (gTTS gives 24 kHz, espeak-ng 22.05 kHz)
OUT_RATE, OUT_BITRATE = 44_100, "64k"  # mono CBR MP3 at 44.1 kHz: what every device decoder plays
TRUE_PEAK_DBTP = -1.5  # headroom for the MP3 encoder's overshoot
LRA = 11.0
CREST_DB = 10.0  # peaks held this far above the loudness before loudnorm (see the module docstring)
PROBE_LEVEL = -27.0  # LUFS the limiter works at, well clear of full scale
TIMEOUT_S = 120.0


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SpeechError(f"{name} is not installed (apt-get install ffmpeg)")
    return found


def _run(argv: list[str], what: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        done = subprocess.run(argv, input=data, capture_output=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise SpeechError(f"{what}: {Path(argv[0]).name} took longer than {TIMEOUT_S:g} s", transient=True) from None
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise SpeechError(f"{what}: {Path(argv[0]).name} failed: {' / '.join(tail) or done.returncode}")
    return done


def to_pcm(data: bytes, what: str) -> bytes:
    """Any audio ffmpeg reads, as mono 16-bit PCM WAV at RATE."""
    done = _run([_tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", "pipe:0", "-vn",
                 "-ac", "1", "-ar", str(RATE), "-c:a", "pcm_s16le", "-f", "wav", "pipe:1"], what, data)
    return _rewrap(done.stdout)


def _rewrap(data: bytes) -> bytes:
    """ffmpeg writing WAV to a pipe cannot seek back to fill in the sizes: find the samples after
    the "data" tag and write a WAV with true sizes."""
    at = data.find(b"data", 12)
    if data[:4] != b"RIFF" or at < 0:
        raise SpeechError("decoded audio is not WAV")
    return pcm_wav(data[at + 8:])


def pcm_wav(frames: bytes) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(frames[: len(frames) - len(frames) % 2])
    return buf.getvalue()


def join(pieces: list[bytes], gap_s: float = 0.3) -> bytes:
    """PCM WAV pieces (from to_pcm) one after another with a pause between them, as a reader
    pauses between sentences."""
    gap = b"\0\0" * int(RATE * gap_s)
    frames = []
    for piece in pieces:
        with wave.open(io.BytesIO(piece)) as w:
            frames.append(w.readframes(w.getnframes()))
    return pcm_wav(gap.join(frames))


def _loudnorm_stats(wav: Path, pre: str, target: float) -> dict[str, float]:
    done = _run([_tool("ffmpeg"), "-hide_banner", "-nostdin", "-nostats", "-i", str(wav), "-af",
                 f"{pre}loudnorm=I={target}:TP={TRUE_PEAK_DBTP}:LRA={LRA}:print_format=json", "-f", "null", "-"],
                "loudness measurement")
    found = re.search(r"\{[^{}]*\"input_i\"[^{}]*\}", done.stderr.decode("utf-8", "replace"))
    if not found:
        raise SpeechError("loudness measurement: ffmpeg printed no loudnorm statistics")
    stats = {k: float(v) for k, v in json.loads(found.group(0)).items() if k.startswith(("input_", "target_"))}
    if stats["input_i"] == float("-inf") or stats["input_i"] < -70:
        raise SpeechError("the synthesised audio is silent")
    return stats


def loudness_normalised_mp3(wav: bytes, target: float) -> bytes:
    """`wav` at `target` LUFS integrated (EBU R128), as a device MP3."""
    with tempfile.TemporaryDirectory(prefix="hub-speech-") as tmp:
        src, out = Path(tmp) / "in.wav", Path(tmp) / "out.mp3"
        src.write_bytes(wav)
        first = _loudnorm_stats(src, "", target)
        ceiling = 10 ** ((PROBE_LEVEL + CREST_DB) / 20)  # linear, as alimiter takes it
        pre = (f"volume={PROBE_LEVEL - first['input_i']:.2f}dB,"
               f"alimiter=limit={ceiling:.5f}:attack=1:release=20:level=false,")
        m = _loudnorm_stats(src, pre, target)
        apply = (f"{pre}loudnorm=I={target}:TP={TRUE_PEAK_DBTP}:LRA={LRA}:measured_I={m['input_i']}:"
                 f"measured_TP={m['input_tp']}:measured_LRA={m['input_lra']}:"
                 f"measured_thresh={m['input_thresh']}:offset={m['target_offset']}:linear=true")
        _run([_tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(src), "-af", apply,
              "-ac", "1", "-ar", str(OUT_RATE), "-c:a", "libmp3lame", "-b:a", OUT_BITRATE, "-id3v2_version", "0",
              "-write_xing", "0", str(out)], "loudness normalisation")
        return out.read_bytes()


def integrated_loudness(data: bytes) -> float:
    """The integrated loudness of `data` in LUFS, by ffmpeg's EBU R128 meter (ebur128)."""
    done = _run([_tool("ffmpeg"), "-hide_banner", "-nostdin", "-nostats", "-i", "pipe:0", "-af", "ebur128",
                 "-f", "null", "-"], "loudness measurement", data)
    summary = done.stderr.decode("utf-8", "replace").rpartition("Summary:")[2]
    found = re.search(r"I:\s*(-?[\d.]+|-inf) LUFS", summary)
    if not found:
        raise SpeechError("loudness measurement: ebur128 printed no integrated loudness")
    return float(found.group(1))


def duration_s(data: bytes) -> float:
    """How long `data` plays, by ffprobe."""
    with tempfile.NamedTemporaryFile(suffix=".audio") as f:  # ffprobe reads an MP3's length best from a file
        f.write(data)
        f.flush()
        done = _run([_tool("ffprobe"), "-v", "error", "-show_entries", "format=duration", "-of", "json", f.name],
                    "duration")
    try:
        return round(float(json.loads(done.stdout)["format"]["duration"]), 3)
    except (KeyError, ValueError, TypeError):
        raise SpeechError("duration: ffprobe could not tell how long the audio is") from None
