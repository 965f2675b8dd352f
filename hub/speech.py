"""What a speech provider is: text in, audio out, in a language and a voice.

Text-to-speech engines are plugins, so a province can choose one (an on-premises engine, a
cloud service under contract) without a change to the hub. The hub hands a `SpeechRequest`,
checked here, and stores the `SpeechResult`'s audio in its media store before any device hears it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hub.contract import BaseManifest, ContractError, Health, ManifestError, Plugin, check_language, check_text, stub

MIN_RATE, MAX_RATE = 0.5, 2.0
MAX_TEXT = 20_000  # characters: a long bulletin, not a book


class SpeechError(ContractError):
    """A request the provider cannot speak (language, voice, text), or synthesis failed; the message
    says which. `transient=True`: the engine is busy or unreachable, try again later."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, kw_only=True)
class SpeechManifest(BaseManifest):
    kind: ClassVar[str] = "speech"
    languages: tuple[str, ...]  # what it can speak: ("vi",), ("vi", "en")
    media_types: tuple[str, ...] = ("audio/wav",)  # what synthesize() returns

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("languages", "media_types"):
            value = getattr(self, name)
            if isinstance(value, str) or not value:
                raise ManifestError(f"speech {self.name}: {name} must be a non-empty tuple")
            object.__setattr__(self, name, tuple(value))
        for tag in self.languages:
            check_language(tag, f"speech {self.name}: languages", ManifestError)
        for media_type in self.media_types:
            if not isinstance(media_type, str) or not media_type.startswith("audio/"):
                raise ManifestError(f"speech {self.name}: media type {media_type!r} is not audio/…")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "kind": self.kind, "languages": list(self.languages),
                "media_types": list(self.media_types)}


@dataclass(frozen=True)
class Voice:
    id: str  # what SpeechRequest.voice names
    language: str
    name: str = ""  # for people: "Hà Nội, nữ"

    def __post_init__(self) -> None:
        check_text(self.id, "voice id", SpeechError, required=True)
        check_language(self.language, f"voice {self.id}: language", SpeechError)


@dataclass(frozen=True)
class SpeechRequest:
    text: str
    language: str  # "vi"
    voice: str | None = None  # a Voice.id from voices(); None: the provider's default for the language
    rate: float = 1.0  # speed relative to the voice's normal pace, 0.5–2.0

    def __post_init__(self) -> None:
        check_text(self.text, "speech request: text", SpeechError, required=True)
        if len(self.text) > MAX_TEXT:
            raise SpeechError(f"speech request: text is longer than {MAX_TEXT} characters")
        check_language(self.language, "speech request: language", SpeechError)
        if self.voice is not None:
            check_text(self.voice, "speech request: voice", SpeechError, required=True)
        if (not isinstance(self.rate, int | float) or isinstance(self.rate, bool)
                or not MIN_RATE <= self.rate <= MAX_RATE):
            raise SpeechError(f"speech request: rate {self.rate!r} is outside {MIN_RATE}–{MAX_RATE}")


@dataclass(frozen=True)
class SpeechResult:
    """The audio: in memory (`audio`) or in a file the provider wrote (`path`), exactly one."""

    media_type: str  # one of the manifest's media_types
    audio: bytes | None = None
    path: Path | None = None
    duration_s: float | None = None  # when the engine knows

    def __post_init__(self) -> None:
        if (self.audio is None) == (self.path is None):
            raise SpeechError("speech result: give exactly one of audio (bytes) or path")
        if self.audio is not None and (not isinstance(self.audio, bytes) or not self.audio):
            raise SpeechError("speech result: audio must be non-empty bytes")
        if self.path is not None:
            object.__setattr__(self, "path", Path(self.path))
        if not isinstance(self.media_type, str) or not self.media_type.startswith("audio/"):
            raise SpeechError(f"speech result: media type {self.media_type!r} is not audio/…")
        if self.duration_s is not None and not self.duration_s >= 0:
            raise SpeechError(f"speech result: duration_s {self.duration_s!r} must be zero or more")


class SpeechProvider(Plugin):
    """Base class of every speech provider. Subclasses set `manifest`, implement synthesize and voices."""

    manifest: ClassVar[SpeechManifest]
    manifest_type = SpeechManifest
    error = SpeechError
    required = ("synthesize", "voices")

    def check_request(self, request: SpeechRequest) -> None:
        """Refuse, before any work, a language the manifest does not list or a voice voices() lacks.
        The hub calls it before synthesize(); a provider may call it too."""
        base = request.language.split("-")[0]
        if request.language not in self.manifest.languages and base not in self.manifest.languages:
            raise SpeechError(f"speech {self.manifest.name}: cannot speak {request.language!r} "
                              f"(it speaks {', '.join(self.manifest.languages)})")
        if request.voice is not None and request.voice not in {v.id for v in self.voices()}:
            raise SpeechError(f"speech {self.manifest.name}: no voice {request.voice!r}")

    @stub
    def synthesize(self, request: SpeechRequest) -> SpeechResult:
        """Speak request.text; raise SpeechError naming what cannot be spoken."""
        raise NotImplementedError

    @stub
    def voices(self) -> Sequence[Voice]:
        """The voices available now (installed, licensed)."""
        raise NotImplementedError

    def health(self) -> Health:
        """Whether the engine answers right now."""
        return Health(True)
