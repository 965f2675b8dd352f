"""The entry point (hub.speech: espeak_ng): registers the provider."""
from __future__ import annotations

from typing import Any

from hub.hookspecs import hookimpl

from hub_espeak_ng.provider import EspeakNg


@hookimpl
def register_speech_providers(register: Any) -> None:
    register(EspeakNg)
