"""A text bulletin becomes device audio with no internet: the chain falls back to espeak-ng and
says so on the content; with a gTTS stand-in on loopback, gTTS speaks and a second render reuses
the stored audio; whichever speaks, the loudness is on target (measured here with ebur128)."""
from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator

import pytest

from hub.config import Settings, load_settings
from hub.media import MediaStore
from hub.content.speech import render
from hub.speech import SpeechError, SpeechManifest, SpeechProvider, SpeechRequest, SpeechResult, Voice
from hub.store.models import Content
from tests.support.media import closed_port, ebur128_lufs

pytestmark = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("ffmpeg")),
                                reason="espeak-ng and ffmpeg are needed (scripts/services.sh installs them)")
hub_gtts = pytest.importorskip("hub_gtts")
hub_espeak_ng = pytest.importorskip("hub_espeak_ng")

from hub_espeak_ng.provider import EspeakNg  # noqa: E402 - after the skips
from hub_gtts.provider import GoogleTts  # noqa: E402
from hub_gtts.standin import StandIn, make_mp3  # noqa: E402

BULLETIN = ("UBND xã Tân Phú thông báo: hồi 7h30 ngày 12/10/2026, bão số 3 đổ bộ với sức gió 90 km/h. "
            "Bà con neo đậu tàu thuyền, gia cố nhà cửa.")
PROVIDERS = {"gtts": GoogleTts, "espeak_ng": EspeakNg}




def _settings(gtts_url: str, **extra: object) -> Settings:
    s = load_settings({})
    s.speech_providers = ["gtts", "espeak_ng"]
    s.plugins = {"gtts": {"service_url": gtts_url, "timeout_s": 2}}
    for key, value in extra.items():
        setattr(s, key, value)
    return s


def _bulletin(body: str = BULLETIN) -> Content:
    return Content(id="c-bao-so-3", kind="tts_text", language="vi", title="Bão số 3", body=body)


def stored(store: MediaStore) -> list[str]:
    """What the directory store holds, by modification time and name (a write changes it)."""
    return sorted(f"{p.relative_to(store.root)}@{p.stat().st_mtime_ns}" for p in store.root.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path) -> MediaStore:
    """The hub's own directory store (plugins/media/directory), on this test's directory."""
    from hub_media_directory.store import DirectoryStore

    return DirectoryStore.configured({"directory": str(tmp_path / "media"), "url_secret": "ab" * 32,
                                      "public_base_url": "http://127.0.0.1:8080"})


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    with StandIn(make_mp3(4.0)) as s:
        yield s


def test_with_no_internet_espeak_speaks_and_the_fallback_is_recorded(store: MediaStore) -> None:
    content = _bulletin()
    out = render(store, content, _settings(f"http://127.0.0.1:{closed_port()}/batchexecute"), PROVIDERS)
    speech, media = content.speech, content.media
    assert speech["provider"] == "espeak_ng" and out["cached"] is False
    assert [f["provider"] for f in speech["fallback_from"]] == ["gtts"]
    assert "cannot reach the service" in speech["fallback_from"][0]["error"]
    stored = store.get(media["key"])
    assert media == {"key": speech["cache_key"], "media_type": "audio/mpeg", "sha256": stored.info.sha256,
                     "duration_s": media["duration_s"], "size": len(stored.data)}
    assert stored.data[:3] == b"ID3" or stored.data[0] == 0xFF  # an MP3 frame, devices decode it
    assert 6.0 < media["duration_s"] < 25.0  # about 30 words once the date, time and units are written out
    assert abs(ebur128_lufs(stored.data) - (-16.0)) <= 1.0
    assert speech["loudness_lufs"] == pytest.approx(ebur128_lufs(stored.data), abs=0.2)


def test_with_the_gtts_stand_in_gtts_speaks_and_a_second_render_is_a_cache_hit(store: MediaStore,
                                                                              standin: StandIn) -> None:
    standin.texts.clear()
    settings = _settings(standin.url, speech_loudness_lufs=-20.0)
    short = "Lịch cắt điện ngày 5/12 lúc 7h"  # gTTS sends a short text without commas in one request
    first, second = _bulletin(short), _bulletin(short)
    render(store, first, settings, PROVIDERS)
    assert first.speech["provider"] == "gtts" and first.speech["fallback_from"] == []
    assert standin.texts == ["Lịch cắt điện ngày năm tháng mười hai lúc bảy giờ"]
    writes = stored(store)
    out = render(store, second, settings, PROVIDERS)
    assert out["cached"] is True and second.media == first.media and second.speech["provider"] == "gtts"
    assert len(standin.texts) == 1 and stored(store) == writes  # nobody was asked, nothing was written
    assert abs(ebur128_lufs(store.get(first.media["key"]).data) - (-20.0)) <= 1.0


def test_what_decides_the_sound_decides_the_key(store: MediaStore, standin: StandIn) -> None:
    base = _settings(standin.url)
    keys = set()
    for settings, body in ((base, BULLETIN), (base, BULLETIN + " Xin cảm ơn."),
                           (_settings(standin.url, speech_loudness_lufs=-18.0), BULLETIN),
                           (_settings(standin.url, speech_dictionary={"Tân Phú": "Tân Phú Trung"}), BULLETIN)):
        content = _bulletin(body)
        render(store, content, settings, PROVIDERS)
        keys.add(content.media["key"])
    assert len(keys) == 4
    # the same words typed differently are the same bulletin
    typed = _bulletin(BULLETIN.replace("7h30", "07:30"))
    assert render(store, typed, base, PROVIDERS)["cached"] is True


class Hangs(SpeechProvider):
    """A provider that never returns: the chain must move on without it."""

    manifest = SpeechManifest(name="hangs", title="Hangs", version="0", languages=("vi",))
    release = threading.Event()

    def voices(self) -> list[Voice]:
        return [Voice("vi", "vi")]

    def synthesize(self, request: SpeechRequest) -> SpeechResult:
        self.release.wait(60)
        raise SpeechError("released")


def test_a_provider_that_hangs_is_left_behind_after_the_timeout(store: MediaStore) -> None:
    settings = _settings("http://127.0.0.1:9/x", speech_providers=["hangs", "espeak_ng"], speech_timeout_s=1.0)
    content = _bulletin("Thông báo khẩn.")
    started = time.monotonic()
    try:
        render(store, content, settings, {"hangs": Hangs, "espeak_ng": EspeakNg})
    finally:
        Hangs.release.set()
    assert content.speech["provider"] == "espeak_ng" and time.monotonic() - started < 30
    assert content.speech["fallback_from"] == [{"provider": "hangs", "error": "SpeechError: no audio within 1 s"}]


def test_a_long_bulletin_is_spoken_in_pieces_joined_into_one_file(store: MediaStore) -> None:
    body = " ".join(f"Đây là câu thông báo số {i}." for i in range(1, 13))
    settings = _settings("http://127.0.0.1:9/x", speech_providers=["espeak_ng"], speech_chunk_chars=80)
    content = _bulletin(body)
    render(store, content, settings, PROVIDERS)
    assert content.speech["chunks"] >= 4 and content.speech["fallback_from"] == []
    assert content.media["duration_s"] > 12.0  # twelve sentences and the pauses between them


def test_when_nothing_can_speak_the_error_names_every_failure(store: MediaStore) -> None:
    settings = _settings(f"http://127.0.0.1:{closed_port()}/x", speech_providers=["gtts", "piper"])
    content = _bulletin("Thông báo.")
    with pytest.raises(SpeechError, match=r"piper: not installed.*gtts: SpeechError") as caught:
        render(store, content, settings, PROVIDERS)
    assert caught.value.transient and content.media is None and stored(store) == []
    with pytest.raises(SpeechError, match="only a tts_text content"):
        render(store, Content(id="x", kind="audio_file", title="t"), settings, PROVIDERS)
