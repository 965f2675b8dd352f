"""The entry point (hub.speech: gtts): registers the provider."""
from __future__ import annotations

from typing import Any

from hub.hookspecs import hookimpl

from hub_gtts.provider import GoogleTts


@hookimpl
def register_speech_providers(register: Any) -> None:
    register(GoogleTts)
