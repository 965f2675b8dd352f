"""espeak-ng speaks Vietnamese with no network: real audio of a plausible length, in each of its
three regional voices, and refuses cleanly what it cannot do."""
from __future__ import annotations

import array
import io
import shutil
import wave

import pytest

from hub.plugins import Plugins
from hub.speech import SpeechError, SpeechRequest

from hub_espeak_ng.provider import EspeakNg

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed "
                                "(scripts/services.sh installs it)")

BULLETIN = "Thông báo khẩn: bão số ba đang tiến vào đất liền. Bà con cần chủ động phòng tránh."


def _samples(audio: bytes) -> tuple[array.array, int]:
    with wave.open(io.BytesIO(audio)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return array.array("h", w.readframes(w.getnframes())), w.getframerate()


@pytest.mark.parametrize("voice", ["vi", "vi-vn-x-central", "vi-vn-x-south", None])
def test_it_speaks_vietnamese_offline_in_each_voice(voice: str | None) -> None:
    result = EspeakNg.configured({}).synthesize(SpeechRequest(BULLETIN, "vi", voice))
    samples, rate = _samples(result.audio)
    seconds = len(samples) / rate
    assert result.media_type == "audio/wav" and result.duration_s == pytest.approx(seconds)
    # 17 words: a reader takes 4-12 s; much less would be letters skipped, much more a stall
    assert 4.0 < seconds < 12.0
    loud = sum(1 for s in samples if abs(s) > 1000)
    assert loud > len(samples) * 0.2, "mostly silence"


def test_a_slower_rate_takes_longer() -> None:
    provider = EspeakNg.configured({})
    normal = provider.synthesize(SpeechRequest(BULLETIN, "vi")).duration_s
    slow = provider.synthesize(SpeechRequest(BULLETIN, "vi", rate=0.6)).duration_s
    assert slow > normal * 1.3


def test_text_that_looks_like_options_is_spoken_not_obeyed(tmp_path) -> None:
    # the text goes in on standard input: "-w /path" in a bulletin must not write a file
    target = tmp_path / "owned.wav"
    result = EspeakNg.configured({}).synthesize(SpeechRequest(f"-w {target} --help; rm -rf /", "vi"))
    assert result.duration_s > 0.5 and not target.exists()


def test_what_it_cannot_do_is_refused_naming_it() -> None:
    provider = EspeakNg.configured({})
    with pytest.raises(SpeechError, match="no voice 'vi-hue'"):
        provider.synthesize(SpeechRequest("xin chào", "vi", "vi-hue"))
    with pytest.raises(SpeechError, match="cannot speak 'en'"):
        provider.synthesize(SpeechRequest("hello", "en"))
    with pytest.raises(SpeechError, match="configuration: words_per_minute"):
        EspeakNg.configured({"words_per_minute": 5})


def test_a_missing_program_is_a_configuration_error_and_unhealthy() -> None:
    provider = EspeakNg.configured({"binary": "espeak-ng-not-here"})
    assert not provider.health().ok and "not installed" in provider.health().detail
    assert provider.voices() == []
    with pytest.raises(SpeechError, match="not installed") as caught:
        provider.synthesize(SpeechRequest("xin chào", "vi"))
    assert not caught.value.transient


def test_a_program_that_does_not_finish_in_time_is_a_transient_failure(tmp_path) -> None:
    slow = tmp_path / "espeak-slow"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    provider = EspeakNg.configured({"binary": str(slow), "timeout_s": 0.5})
    with pytest.raises(SpeechError, match="no audio within 0.5 s") as caught:
        provider.synthesize(SpeechRequest("xin chào", "vi"))
    assert caught.value.transient


def test_the_hub_finds_it_through_its_entry_point() -> None:
    plugins = Plugins()
    plugins.load_entry_points({"espeak_ng"})
    assert plugins.speech_providers()["espeak_ng"] is EspeakNg and not plugins.problems
