"""gTTS through a stand-in for Google's endpoint on loopback: it is asked in Vietnamese, its audio
comes back, and an unreachable or silent service fails within the timeout, transiently."""
from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from hub.plugins import Plugins
from hub.speech import SpeechError, SpeechRequest

from hub_gtts.provider import GoogleTts
from hub_gtts.standin import StandIn, make_mp3

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


@pytest.fixture(scope="module")
def mp3() -> bytes:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    return make_mp3(1.0)


@pytest.fixture
def standin(mp3: bytes) -> Iterator[StandIn]:
    with StandIn(mp3) as s:
        yield s


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


@needs_ffmpeg
def test_it_asks_the_configured_service_in_vietnamese_and_returns_its_mp3(standin: StandIn, mp3: bytes) -> None:
    result = GoogleTts.configured({"service_url": standin.url, "timeout_s": 5}).synthesize(
        SpeechRequest("Thông báo lịch cắt điện.", "vi"))
    assert result.media_type == "audio/mpeg" and result.audio == mp3
    assert standin.texts == ["Thông báo lịch cắt điện."] and standin.languages == ["vi"]


@needs_ffmpeg
def test_a_long_text_goes_in_several_requests_and_comes_back_as_one(standin: StandIn, mp3: bytes) -> None:
    text = " ".join(["Bà con chú ý theo dõi thông tin về cơn bão."] * 6)  # gTTS sends at most 100 characters
    result = GoogleTts.configured({"service_url": standin.url}).synthesize(SpeechRequest(text, "vi"))
    assert len(standin.texts) >= 3 and result.audio == mp3 * len(standin.texts)


def test_an_unreachable_service_fails_at_once_and_transiently() -> None:
    provider = GoogleTts.configured({"service_url": f"http://127.0.0.1:{_closed_port()}/x", "timeout_s": 5})
    started = time.monotonic()
    with pytest.raises(SpeechError, match="cannot reach the service") as caught:
        provider.synthesize(SpeechRequest("xin chào", "vi"))
    assert caught.value.transient and time.monotonic() - started < 5


def test_a_service_that_never_answers_is_given_up_after_the_timeout() -> None:
    # gTTS's own default would wait here forever
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(5)
        held: list[socket.socket] = []
        accept = threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True)
        accept.start()
        provider = GoogleTts.configured({"service_url": f"http://127.0.0.1:{server.getsockname()[1]}/x",
                                         "timeout_s": 0.5})
        started = time.monotonic()
        with pytest.raises(SpeechError) as caught:
            provider.synthesize(SpeechRequest("xin chào", "vi"))
        assert caught.value.transient and time.monotonic() - started < 5
        for conn in held:
            conn.close()


@needs_ffmpeg
@pytest.mark.parametrize(("status", "transient"), [(503, True), (429, True), (403, False)])
def test_an_error_answer_says_whether_a_retry_may_help(mp3: bytes, status: int, transient: bool) -> None:
    with StandIn(mp3, status=status) as s:
        with pytest.raises(SpeechError, match=str(status)) as caught:
            GoogleTts.configured({"service_url": s.url}).synthesize(SpeechRequest("xin chào", "vi"))
    assert caught.value.transient is transient


def test_settings_are_checked_and_certificates_verified_by_default() -> None:
    assert GoogleTts.configured({}).config["verify_tls"] is True
    assert GoogleTts.configured({}).config["timeout_s"] > 0
    with pytest.raises(SpeechError, match="configuration: service_url"):
        GoogleTts.configured({"service_url": "file:///etc/passwd"})
    with pytest.raises(SpeechError, match="configuration: tld"):
        GoogleTts.configured({"tld": "vn"})


def test_the_hub_finds_it_through_its_entry_point() -> None:
    plugins = Plugins()
    plugins.load_entry_points({"gtts"})
    assert plugins.speech_providers()["gtts"] is GoogleTts and not plugins.problems
