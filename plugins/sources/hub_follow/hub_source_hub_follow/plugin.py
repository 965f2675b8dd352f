"""Entry point of the hub_follow source (group hub.sources)."""
from __future__ import annotations

from collections.abc import Callable

from hub.hookspecs import hookimpl

from hub_source_hub_follow.source import HubFollow


@hookimpl
def register_sources(register: Callable[[type], None]) -> None:
    register(HubFollow)
