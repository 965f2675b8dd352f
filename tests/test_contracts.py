"""The typed inputs and results of the plugin contracts refuse what breaks them, with a clear error."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hub import vendor
from hub.contract import ContractError, Health, ManifestError
from hub.media import MediaError, MediaInfo, MediaManifest, SignedUrl, check_key, sign, signature_ok
from hub.output import Output, OutputError, OutputManifest, event_type
from hub.source import MediaRef, Source, SourceError, SourceItem, SourceManifest, checked_items
from hub.speech import SpeechError, SpeechManifest, SpeechRequest, SpeechResult, Voice

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)


def test_the_vendor_contract_shares_the_manifest_error_and_health() -> None:
    assert vendor.ManifestError is ManifestError and issubclass(ManifestError, ContractError)
    assert issubclass(ManifestError, ValueError) and vendor.Health is Health
    for error in (SourceError, OutputError, SpeechError, MediaError):
        assert issubclass(error, ContractError)


# -- sources ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("external_id", ["", "   ", None])
def test_a_source_item_without_an_external_id_is_refused(external_id: object) -> None:
    with pytest.raises(SourceError, match="external_id is required"):
        SourceItem(external_id=external_id, title="Bão số 9")  # type: ignore[arg-type]


@pytest.mark.parametrize("fields, message", [
    ({"published_at": datetime(2026, 12, 5)}, "published_at must be a timezone-aware datetime"),
    ({"severity": "urgent"}, "severity 'urgent' is not one of normal, priority, emergency"),
    ({"language": "Vietnamese"}, "'Vietnamese' is not a language tag"),
    ({"raw": {"x": float("nan")}}, "raw: not storable JSON"),
    ({"title": "bad \ud800"}, "title: contains an unpaired surrogate"),
    ({"external_id": "x" * 501}, "longer than 500"),
    ({"attachments": ["https://x/a.mp3"]}, "attachments must be hub.source.MediaRef"),
])
def test_a_malformed_source_item_is_refused_naming_the_field(fields: dict, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        SourceItem(**{"external_id": "guid-1", "title": "Bão số 9", **fields})


def test_a_sound_source_item_keeps_what_it_was_given() -> None:
    item = SourceItem("guid-1", "Bão số 9", text="…", language="vi", published_at=NOW, severity="emergency",
                      attachments=[MediaRef("https://x/a.mp3", "audio/mpeg")], raw={"guid": "guid-1"})
    assert item.attachments == (MediaRef("https://x/a.mp3", "audio/mpeg"),)  # a list becomes a tuple


def test_what_fetch_returns_is_checked_for_type_and_repeated_ids() -> None:
    a = SourceItem("a", "A")
    assert checked_items("rss", [a]) == [a]
    with pytest.raises(SourceError, match="source rss: fetch\\(\\) returned external_id 'a' twice"):
        checked_items("rss", [a, SourceItem("a", "A again")])
    with pytest.raises(SourceError, match="returned a dict, not a SourceItem"):
        checked_items("rss", [{"external_id": "a"}])


def test_a_source_class_that_does_not_implement_fetch_breaks_the_contract() -> None:
    class Half(Source):
        manifest = SourceManifest(name="half", title="Half", version="1")

        def test(self):  # noqa: ANN202
            raise NotImplementedError

    class Nameless(Source):
        pass

    assert Half.contract_problems() == ["does not implement fetch()"]
    assert Nameless.contract_problems()[0].startswith("has no manifest")


@pytest.mark.parametrize("name", ["RSS", "9feed", "rss-feed", "", None])
def test_a_manifest_name_outside_the_rule_is_refused(name: object) -> None:
    with pytest.raises(ManifestError, match="source name"):
        SourceManifest(name=name, title="T", version="1")  # type: ignore[arg-type]


def test_a_source_manifest_lists_formats_and_a_positive_interval() -> None:
    with pytest.raises(ManifestError, match="formats must be a tuple of names, not one string"):
        SourceManifest(name="rss", title="RSS", version="1", formats="rss-2.0")
    with pytest.raises(ManifestError, match="min_interval_s must be a positive number"):
        SourceManifest(name="rss", title="RSS", version="1", min_interval_s=0)


def test_a_manifest_config_schema_must_be_a_marshmallow_schema() -> None:
    with pytest.raises(ManifestError, match="config_schema must be a marshmallow Schema class"):
        SourceManifest(name="rss", title="T", version="1", config_schema=dict)  # type: ignore[arg-type]


# -- outputs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fields, message", [
    ({}, "declares neither events nor interval_s"),
    ({"events": "device.offline"}, "events must be a set of type names, not one string"),
    ({"events": {"Device Offline"}}, "not event type names: 'Device Offline'"),
    ({"interval_s": 0}, "interval_s must be a positive number"),
])
def test_an_output_manifest_that_could_never_run_is_refused(fields: dict, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        OutputManifest(name="metrics", title="Metrics", version="1", **fields)


def test_an_output_is_given_the_events_it_names_by_type_name() -> None:
    m = OutputManifest(name="metrics", title="Metrics", version="1", events={"device.offline"})
    assert m.wants({"type": "device.offline"}) and not m.wants({"type": "device.online"})
    assert OutputManifest(name="stream", title="S", version="1", events={"*"}).wants({"type": "anything.new"})
    with pytest.raises(OutputError, match="event without a type name"):
        event_type({"device_id": "x"})


def test_an_output_that_runs_periodically_must_implement_run_periodic() -> None:
    class Lazy(Output):
        manifest = OutputManifest(name="lazy", title="Lazy", version="1", interval_s=60)

    assert Lazy.contract_problems() == ["declares interval_s but does not implement run_periodic()"]


# -- speech ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (("", "vi"), "text: must not be empty"),
    (("xin chào", "tiếng Việt"), "is not a language tag"),
    (("xin chào", "vi", None, 3.0), "rate 3.0 is outside 0.5–2.0"),
    (("xin chào", "vi", ""), "voice: must not be empty"),
    (("x" * 20_001, "vi"), "longer than 20000"),
])
def test_a_speech_request_outside_the_contract_is_refused(args: tuple, message: str) -> None:
    with pytest.raises(SpeechError, match=message):
        SpeechRequest(*args)


def test_a_speech_result_has_audio_or_a_path_not_both(tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match="exactly one of audio"):
        SpeechResult("audio/wav", audio=b"RIFF", path=tmp_path / "a.wav")
    with pytest.raises(SpeechError, match="exactly one of audio"):
        SpeechResult("audio/wav")
    with pytest.raises(SpeechError, match="media type 'text/plain' is not audio"):
        SpeechResult("text/plain", audio=b"x")
    assert SpeechResult("audio/mpeg", path=str(tmp_path / "a.mp3")).path == tmp_path / "a.mp3"  # type: ignore


def test_a_speech_manifest_names_the_languages_it_speaks() -> None:
    with pytest.raises(ManifestError, match="languages must be a non-empty tuple"):
        SpeechManifest(name="tts", title="TTS", version="1", languages=())
    with pytest.raises(ManifestError, match="media type 'wav' is not audio"):
        SpeechManifest(name="tts", title="TTS", version="1", languages=("vi",), media_types=("wav",))
    with pytest.raises(SpeechError, match="voice id: must not be empty"):
        Voice("", "vi")


# -- media -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/path", "a/../b", "a//b", "sp ace", "", "x" * 256])
def test_a_media_key_that_could_escape_or_break_a_url_is_refused(key: str) -> None:
    with pytest.raises(MediaError, match="media key"):
        check_key(key)


def test_signed_urls_expire_and_name_one_key() -> None:
    expires = NOW + timedelta(minutes=5)
    sig = sign(b"k", "a/b.mp3", expires)
    ts = int(expires.timestamp())
    assert signature_ok(b"k", "a/b.mp3", ts, sig, NOW)
    assert not signature_ok(b"k", "a/b.mp3", ts, sig, expires)
    assert not signature_ok(b"other", "a/b.mp3", ts, sig, NOW)
    assert not signature_ok(b"k", "a/b.mp3", ts + 60, sig, NOW)  # a later expiry is another signature
    with pytest.raises(MediaError, match="expires_at must be a timezone-aware"):
        SignedUrl("https://hub/media/a", datetime(2026, 12, 5))


def test_media_info_and_manifest_refuse_nonsense() -> None:
    assert MediaInfo.of("a.wav", "audio/wav", b"abc").sha256.startswith("ba7816bf")
    with pytest.raises(MediaError, match="sha256 must be 64"):
        MediaInfo("a.wav", "audio/wav", 3, "abc")
    with pytest.raises(ManifestError, match="max_bytes must be a positive integer"):
        MediaManifest(name="s3", title="S3", version="1", max_bytes=0)
