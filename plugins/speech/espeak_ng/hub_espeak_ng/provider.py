"""espeak-ng as a speech provider: the offline voice that speaks when nothing else can.

The program runs as a child process with an argument list (never a shell) and a timeout; the text
goes in on standard input, so nothing in a bulletin can become an option or a file name.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

from marshmallow import RAISE, Schema, fields, validate

from hub.contract import Health
from hub.speech import SpeechError, SpeechManifest, SpeechProvider, SpeechRequest, SpeechResult, Voice

from hub_espeak_ng import __version__

# The Vietnamese voices Debian's espeak-ng 1.51 ships (espeak-ng --voices=vi).
VOICES = (Voice("vi", "vi", "Miền Bắc (Northern)"),
          Voice("vi-vn-x-central", "vi", "Miền Trung (Central)"),
          Voice("vi-vn-x-south", "vi", "Miền Nam (Southern)"))


class ConfigSchema(Schema):
    class Meta:
        unknown = RAISE

    binary = fields.Str(load_default="espeak-ng")
    timeout_s = fields.Float(load_default=30.0, validate=validate.Range(min=0.1, max=600))
    # espeak-ng's own default is 175 words a minute; outdoor loudspeakers echo between houses,
    # and a slightly slower pace is easier to follow there
    words_per_minute = fields.Int(load_default=150, validate=validate.Range(min=80, max=450))
    pitch = fields.Int(load_default=50, validate=validate.Range(min=0, max=99))


class EspeakNg(SpeechProvider):
    manifest = SpeechManifest(name="espeak_ng", title="espeak-ng (offline, Vietnamese)", version=__version__,
                              config_schema=ConfigSchema, languages=("vi",), media_types=("audio/wav",))

    def _binary(self) -> str | None:
        return shutil.which(self.config.get("binary", "espeak-ng"))

    def voices(self) -> list[Voice]:
        return list(VOICES) if self._binary() else []

    def health(self) -> Health:
        binary = self._binary()
        if binary is None:
            return Health(False, f"{self.config.get('binary', 'espeak-ng')} is not installed "
                                  "(apt-get install espeak-ng)")
        return Health(True, binary)

    def synthesize(self, request: SpeechRequest) -> SpeechResult:
        binary = self._binary()
        if binary is None:
            raise SpeechError(f"speech espeak_ng: {self.config.get('binary', 'espeak-ng')} is not installed "
                              "(apt-get install espeak-ng)")
        self.check_request(request)
        voice = request.voice or VOICES[0].id
        wpm = max(80, min(450, round(self.config.get("words_per_minute", 150) * request.rate)))
        timeout = self.config.get("timeout_s", 30.0)
        with tempfile.TemporaryDirectory(prefix="hub-espeak-") as tmp:
            out = Path(tmp) / "speech.wav"
            # -b 1: the input is UTF-8 whatever the locale (a C locale would mangle the diacritics)
            argv = [binary, "-v", voice, "-s", str(wpm), "-p", str(self.config.get("pitch", 50)), "-b", "1",
                    "--stdin", "-w", str(out)]
            try:
                done = subprocess.run(argv, input=request.text.encode("utf-8"), capture_output=True,
                                      timeout=timeout, check=False, env={**os.environ, "LC_ALL": "C.UTF-8"})
            except subprocess.TimeoutExpired:
                raise SpeechError(f"speech espeak_ng: no audio within {timeout:g} s", transient=True) from None
            except OSError as exc:
                raise SpeechError(f"speech espeak_ng: cannot run {binary}: {exc.strerror}") from None
            if done.returncode != 0:
                said = done.stderr.decode("utf-8", "replace").strip()[-300:]
                raise SpeechError(f"speech espeak_ng: exited with {done.returncode}: {said or 'no message'}")
            audio = out.read_bytes() if out.exists() else b""
        if len(audio) <= 44:  # a WAV header and nothing after it
            raise SpeechError("speech espeak_ng: produced no audio")
        return SpeechResult(media_type="audio/wav", audio=audio, duration_s=wav_duration(audio))


def wav_duration(audio: bytes) -> float | None:
    try:
        with wave.open(io.BytesIO(audio)) as w:
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError, ZeroDivisionError):
        return None
