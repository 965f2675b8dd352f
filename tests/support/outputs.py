"""Output plugins for the runner's tests, registered by hand (`register(plugins)`): each records
what it was given under its configured `key`, so a test reads what one instance saw."""
from __future__ import annotations

import threading
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from marshmallow import RAISE, Schema, fields

from hub.hookspecs import hookimpl
from hub.output import Output, OutputContext, OutputError, OutputManifest
from hub.plugins import Plugins

SEEN: dict[str, list[str]] = defaultdict(list)  # key -> event types handled, in order
ATTEMPTS: dict[str, int] = defaultdict(int)  # key -> handle() calls, failed ones included
PERIODIC: dict[str, list[datetime]] = defaultdict(list)
OPENED: dict[str, OutputContext] = {}
RELEASE = threading.Event()  # lets a stuck output go


class Config(Schema):
    class Meta:
        unknown = RAISE

    key = fields.Str(required=True)
    fail_first = fields.Int(load_default=0)  # this many handle() calls fail transiently first
    broken = fields.Bool(load_default=False)  # every handle() fails for good


class _Recording(Output):
    def open(self, context: OutputContext) -> None:
        super().open(context)
        OPENED[self.config["key"]] = context

    def handle(self, event: Any) -> None:
        key = self.config["key"]
        ATTEMPTS[key] += 1
        if self.config["broken"]:
            raise OutputError(f"{key}: the destination refused it")
        if ATTEMPTS[key] <= self.config["fail_first"]:
            raise OutputError(f"{key}: the destination is down", transient=True)
        SEEN[key].append(event.type)


class OfflineOnly(_Recording):
    manifest = OutputManifest(name="test_offline_only", title="Only devices going offline", version="1",
                              config_schema=Config, events=frozenset({"device.offline"}))


class Everything(_Recording):
    manifest = OutputManifest(name="test_everything", title="Every event", version="1", config_schema=Config,
                              events=frozenset({"*"}), interval_s=0.2)

    def run_periodic(self, now: datetime) -> None:
        PERIODIC[self.config["key"]].append(now)


class Stuck(_Recording):
    """Hangs in handle() until RELEASE is set: a destination that never answers."""
    manifest = OutputManifest(name="test_stuck", title="Never answers", version="1", config_schema=Config,
                              events=frozenset({"*"}))

    def handle(self, event: Any) -> None:
        ATTEMPTS[self.config["key"]] += 1
        RELEASE.wait(60)


@hookimpl
def register_outputs(register: Any) -> None:
    for cls in (OfflineOnly, Everything, Stuck):
        register(cls)


def register(plugins: Plugins) -> None:
    import sys

    plugins.register_module(sys.modules[__name__], "test_outputs", group="hub.outputs")


def reset() -> None:
    for d in (SEEN, ATTEMPTS, PERIODIC, OPENED):
        d.clear()
    RELEASE.clear()


def write_outputs(path: Path, *entries: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump({"outputs": list(entries)}, allow_unicode=True), encoding="utf-8")


def entry(name: str, plugin: str, enabled: bool = True, **config: Any) -> dict[str, Any]:
    return {"name": name, "plugin": plugin, "enabled": enabled, "config": {"key": name, **config}}
