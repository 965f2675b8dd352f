"""Event types go through a hook, the hub's own like a plugin's: an output or the console can ask
which events exist and who publishes them, and a plugin's own event travels like the hub's."""
from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from hub.events import Event
from hub.hookspecs import hookimpl
from hub.plugins import Plugins, kind_lines


@dataclass(frozen=True)
class BulletinReceived(Event):
    """What a source plugin might publish when a new item arrives."""
    type = "sample_source.bulletin_received"

    source: str
    external_id: str
    at: datetime


def _plugin(name: str, register_fn: Callable[[Callable[[Any], None]], None]) -> types.ModuleType:
    module = types.ModuleType(name)
    module.register_event_types = hookimpl(register_fn)  # type: ignore[attr-defined]
    return module


def test_the_hubs_own_event_types_come_through_the_hook() -> None:
    plugins = Plugins()
    found = plugins.event_types()
    assert {"device.online", "device.offline", "device.degraded", "delivery.changed", "command.finished"} <= set(found)
    assert {reg.plugin for reg in found.values()} == {"hub.events"}


def test_a_plugins_event_type_is_listed_and_round_trips() -> None:
    plugins = Plugins()
    plugins.register_module(_plugin("sample_source", lambda register: register(BulletinReceived)), "sample_source",
                            group="hub.sources")
    assert plugins.event_types()["sample_source.bulletin_received"].item is BulletinReceived
    entry = next(p for p in plugins.describe() if p["name"] == "sample_source")
    assert entry["event_types"] == ["sample_source.bulletin_received"]
    assert "events it publishes: sample_source.bulletin_received" in kind_lines(entry)

    event = BulletinReceived(source="rss-vov", external_id="vov-123", at=datetime(2026, 12, 5, tzinfo=timezone.utc))
    assert Event.from_json(event.to_json()) == event


def test_a_broken_registration_is_reported_and_the_others_stay() -> None:
    def not_an_event(register: Callable[[Any], None]) -> None:
        register(dict)

    def raises(register: Callable[[Any], None]) -> None:
        raise RuntimeError("boom")

    plugins = Plugins()
    plugins.register_module(_plugin("odd", not_an_event), "odd", group="hub.outputs")
    plugins.register_module(_plugin("boom", raises), "boom", group="hub.outputs")
    plugins.register_module(_plugin("fine", lambda register: register(BulletinReceived)), "fine", group="hub.sources")
    found = plugins.event_types()
    assert "sample_source.bulletin_received" in found and "device.online" in found
    assert any("odd" in p and "not a hub.events.Event" in p for p in plugins.problems)
    assert any("boom" in p and "failed and is skipped: boom" in p for p in plugins.problems)
