"""A speech provider that speaks silence: a WAV file as long as the text would take to read."""
from __future__ import annotations

import io
import wave

from hub.hookspecs import hookimpl
from hub.speech import SpeechManifest, SpeechProvider, SpeechRequest, SpeechResult, Voice

RATE = 8000  # samples per second


class Silence(SpeechProvider):
    manifest = SpeechManifest(name="sample_silence", title="Silence, for tests", version="0.1.0",
                              languages=("vi", "en"), media_types=("audio/wav",))

    def voices(self) -> list[Voice]:
        return [Voice("vi-quiet", "vi", "Yên lặng"), Voice("en-quiet", "en", "Quiet")]

    def synthesize(self, request: SpeechRequest) -> SpeechResult:
        self.check_request(request)
        seconds = len(request.text.split()) * 0.4 / request.rate
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(b"\0\0" * int(seconds * RATE))
        return SpeechResult(media_type="audio/wav", audio=buf.getvalue(), duration_s=seconds)


@hookimpl
def register_speech_providers(register):
    register(Silence)
