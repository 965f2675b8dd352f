"""Entry point (hub.media): registers the directory media store."""
from __future__ import annotations

from collections.abc import Callable

from hub.hookspecs import hookimpl

from hub_media_directory.store import DirectoryStore


@hookimpl
def register_media_stores(register: Callable[[type], None]) -> None:
    register(DirectoryStore)
