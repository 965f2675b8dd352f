"""A `tts_text` content's text made into the audio devices play.

The text is normalised (hub.content.normalise) and split at sentence ends; the providers named by
the setting `speech_providers` are tried in order, and the first that speaks every piece within
`speech_timeout_s` is used (an emergency bulletin must not wait on an internet service that does
not answer). The pieces are joined, normalised to `speech_loudness_lufs` (EBU R128) and encoded
as MP3, which is stored in the media store under a key made from a hash of what decides the sound:
the normalised text, the provider and its settings, the voice and the loudness. Rendering the
same text again reuses the stored audio.

What the content records: `content.media` = {key, media_type, sha256, duration_s, size} and
`content.speech` = {provider, voice, fallback_from: [{provider, error}…], cache_key,
loudness_lufs, target_lufs, chunks, cached}.

Why -16 LUFS by default: the R128 broadcast target (-23) is meant for programmes mixed with other
programmes on a receiver the listener turns up; a commune's loudspeaker plays bulletins at a
volume set once, outdoors, beside recorded and uploaded audio that usually sits around -16 to -14.
At -23 a synthesised bulletin would play 7 dB quieter than the music before it. -16 (the common
target for speech on small speakers) keeps 14.5 dB below the -1.5 dBTP peak ceiling for speech.
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from hub.config import Settings
from hub.content import audio
from hub.content.normalise import normalise, split_sentences
from hub.media import MediaError, MediaNotFound, MediaStore
from hub.speech import SpeechError, SpeechProvider, SpeechRequest, SpeechResult
from hub.store.models import Content

FORMAT = 1  # bump when the pipeline's sound changes in a way the settings do not say (a new filter)
MEDIA_TYPE = "audio/mpeg"

Providers = Mapping[str, SpeechProvider | type[SpeechProvider]] | Sequence[SpeechProvider]


def provider_chain(providers: Providers, settings: Settings) -> tuple[list[SpeechProvider], list[dict[str, str]]]:
    """The providers to try, in the order `speech_providers` names them, and a failure entry for
    each name that is not installed (so the record says why it was not tried). A class is made
    with its settings from `plugins:` in the configuration."""
    by_name: dict[str, Any] = ({p.manifest.name: p for p in providers} if not isinstance(providers, Mapping)
                               else dict(providers))
    chain: list[SpeechProvider] = []
    missing: list[dict[str, str]] = []
    for name in settings.speech_providers or list(by_name):
        found = by_name.get(name)
        if found is None:
            missing.append({"provider": name, "error": "not installed"})
        elif isinstance(found, type):
            try:
                chain.append(found.configured(settings.plugin_config(name)))
            except SpeechError as exc:
                missing.append({"provider": name, "error": str(exc)})
        else:
            chain.append(found)
    return chain, missing


def voice_for(provider: SpeechProvider, settings: Settings) -> str | None:
    return settings.speech_voices.get(provider.manifest.name) or None


def cache_key(text: str, provider: SpeechProvider, voice: str | None, settings: Settings, rate: float = 1.0) -> str:
    """The media key of this text as this provider (with its settings) and voice would say it."""
    basis = {"format": FORMAT, "text": text, "provider": provider.manifest.name,
             "provider_version": provider.manifest.version, "provider_config": provider.config, "voice": voice,
             "rate": rate, "target_lufs": settings.speech_loudness_lufs, "chunk_chars": settings.speech_chunk_chars,
             "true_peak": audio.TRUE_PEAK_DBTP, "encoding": [audio.OUT_RATE, audio.OUT_BITRATE]}
    digest = hashlib.sha256(json.dumps(basis, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()
    return f"speech/{digest[:2]}/{digest}.mp3"


def _sidecar(key: str) -> str:
    return key.removesuffix(".mp3") + ".json"


def _cached(store: MediaStore, key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(media, speech) of a render stored earlier, or None. Both objects must be there: the audio
    is written first, so a render cut short leaves no sidecar and is made again."""
    try:
        meta = json.loads(store.get(_sidecar(key)).data)
        obj = store.get(key)
    except MediaNotFound:
        return None
    except (ValueError, KeyError):
        return None  # an unreadable sidecar: render again, it will be replaced
    media = {"key": key, "media_type": obj.info.media_type, "sha256": obj.info.sha256,
             "duration_s": meta["duration_s"], "size": obj.info.size}
    return media, dict(meta["speech"])


def _within(seconds: float, provider: SpeechProvider, request: SpeechRequest) -> SpeechResult:
    """provider.synthesize(request), or a transient SpeechError after `seconds`. The call runs in
    a daemon thread: a provider that hangs (a plugin that forgot its own timeout) is left behind
    rather than holding up the bulletin."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = provider.synthesize(request)
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc

    worker = threading.Thread(target=run, name=f"speech-{provider.manifest.name}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise SpeechError(f"no audio within {seconds:g} s", transient=True)
    if "error" in box:
        raise box["error"]
    return box["result"]


def _speak(provider: SpeechProvider, chunks: list[str], language: str, voice: str | None,
           settings: Settings) -> bytes:
    """All chunks through one provider (one voice for the whole bulletin), joined as PCM WAV."""
    pieces = []
    for chunk in chunks:
        request = SpeechRequest(chunk, language, voice)
        provider.check_request(request)
        result = _within(settings.speech_timeout_s, provider, request)
        if not isinstance(result, SpeechResult):
            raise SpeechError(f"returned {type(result).__name__}, not a SpeechResult")
        data = result.audio if result.audio is not None else result.path.read_bytes()  # type: ignore[union-attr]
        pieces.append(audio.to_pcm(data, "decoding the provider's audio"))
    return audio.join(pieces)


def speak(text: str, language: str, settings: Settings, chain: list[SpeechProvider],
          failures: list[dict[str, str]] | None = None,
          voices: Mapping[str, str | None] | None = None) -> tuple[bytes, dict[str, Any]]:
    """`text` (already normalised) spoken by the first provider of `chain` that can, as device MP3
    at the configured loudness: (mp3, speech record without cache_key). `failures` collects, and
    the record's fallback_from lists, what failed before. Raises SpeechError naming each failure
    when none could."""
    failures = list(failures or [])
    chunks = split_sentences(text, settings.speech_chunk_chars)
    for provider in chain:
        name = provider.manifest.name
        voice = voices.get(name) if voices is not None else voice_for(provider, settings)
        try:
            wav = _speak(provider, chunks, language, voice, settings)
            mp3 = audio.loudness_normalised_mp3(wav, settings.speech_loudness_lufs)
        except Exception as exc:  # any provider failure moves to the next: the bulletin must be spoken
            failures.append({"provider": name, "error": f"{type(exc).__name__}: {exc}"[:500]})
            continue
        return mp3, {"provider": name, "voice": voice, "fallback_from": failures,
                     "loudness_lufs": round(audio.integrated_loudness(mp3), 1),
                     "target_lufs": settings.speech_loudness_lufs, "chunks": len(chunks)}
    said = "; ".join(f"{f['provider']}: {f['error']}" for f in failures) or "no speech provider is configured"
    raise SpeechError(f"no speech provider could speak it ({said})",
                      transient=any(f["error"] != "not installed" for f in failures))


def render(store: MediaStore, content: Content, settings: Settings, providers: Providers,
           force: bool = False) -> dict[str, Any]:
    """Make (or find) the audio of a `tts_text` content and record it on `content` (media and
    speech; the caller commits). Returns {"media", "speech", "cached"}.

    Audio already stored for this text by any provider of the chain is reused (in chain order)
    without asking a provider again, so a second render of a bulletin costs no synthesis; `force`
    ignores it (e.g. to replace espeak-ng's audio by gTTS's once the internet is back). Raises
    SpeechError naming every provider's failure when none could speak."""
    if content.kind != "tts_text" or not (content.body or "").strip():
        raise SpeechError(f"content {content.id}: only a tts_text content with a body is spoken")
    text = normalise(content.body or "", settings.speech_dictionary)
    chain, failures = provider_chain(providers, settings)
    if not force:
        for provider in chain:
            found = _cached(store, cache_key(text, provider, voice_for(provider, settings), settings))
            if found is not None:
                media, speech = found
                return _record(content, media, {**speech, "cached": True})
    try:
        mp3, speech = speak(text, content.language or "vi", settings, chain, failures)
    except SpeechError as exc:
        raise SpeechError(f"content {content.id}: {exc}", transient=exc.transient) from None
    spoke = next(p for p in chain if p.manifest.name == speech["provider"])
    key = cache_key(text, spoke, speech["voice"], settings)
    speech = {**speech, "cache_key": key}
    duration = audio.duration_s(mp3)
    try:
        info = store.put(key, mp3, MEDIA_TYPE)
        store.put(_sidecar(key), json.dumps({"duration_s": duration, "speech": speech}).encode(), "application/json")
    except MediaError as exc:
        raise SpeechError(f"content {content.id}: spoken by {spoke.manifest.name}, but the media store refused it: "
                          f"{exc}", transient=exc.transient) from None
    media = {"key": key, "media_type": MEDIA_TYPE, "sha256": info.sha256, "duration_s": duration, "size": info.size}
    return _record(content, media, {**speech, "cached": False})


def _record(content: Content, media: dict[str, Any], speech: dict[str, Any]) -> dict[str, Any]:
    # whatever else the media record held (a URI another part of the hub added) is replaced: it
    # described other audio
    content.media = media
    content.speech = speech
    return {"media": media, "speech": speech, "cached": speech["cached"]}
