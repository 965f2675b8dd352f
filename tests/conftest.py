"""Shared fixtures. Tests talk to real Redis and Mosquitto on loopback, each test isolated by
its own database file, rq queue names and MQTT topic prefix."""
from __future__ import annotations

import types
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.config import Settings, load_settings
from hub.hookspecs import hookimpl
from hub.plugins import Plugins
from hub.runtime import QUEUE_ORDER, Runtime, set_runtime
from hub.testing import purge_queues
from hub.testing_fixtures import services  # noqa: F401 - a fixture: fail loudly when Redis or Mosquitto is missing
from hub.vendor import Manifest, Outcome, Outgoing, Result, VendorAdapter
from tests.support.services import DATA, MQTT_HOST, MQTT_PORT, REDIS_URL


@pytest.fixture
def mqtt_prefix() -> str:
    return f"hubtest/{uuid.uuid4().hex[:10]}"


@pytest.fixture
def config_file(tmp_path: Path, mqtt_prefix: str, services: None) -> Path:
    """A HUB_CONFIG file that subprocesses (worker, ingest) read too."""
    cfg = {
        "database_url": f"sqlite:///{tmp_path / 'hub.sqlite3'}",
        "redis_url": REDIS_URL,
        "queue": f"hubtest-{uuid.uuid4().hex[:10]}",
        "retry_backoff_s": [0.1, 0.2],
        "sweep_interval_s": 0.2,
        "state_dir": str(tmp_path / "var"),  # the generated session key goes here, not into the repo
        "plugins": {"mqtt_speaker": {"host": MQTT_HOST, "port": MQTT_PORT, "topic_prefix": mqtt_prefix}},
    }
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


@pytest.fixture
def settings(config_file: Path) -> Settings:
    return load_settings({"HUB_CONFIG": str(config_file)})


@pytest.fixture
def rt(settings: Settings):
    plugins = Plugins()
    plugins.load_entry_points()
    runtime = Runtime(settings, plugins=plugins)
    runtime.db.create()
    yield runtime
    purge_queues(runtime.redis, [runtime.queue_name(p) for p in QUEUE_ORDER])
    runtime.close()


@pytest.fixture
def legacy_areas(rt: Runtime) -> None:
    from hub.fleet.registry import import_area_file

    with rt.db.session() as s:
        import_area_file(s, DATA / "legacy-three-level.yaml")


@pytest.fixture
def hub(rt: Runtime, legacy_areas: None) -> Iterator[Runtime]:
    """The runtime with the in-process loopback vendor registered and reset, looked up by jobs
    as in a worker process."""
    from tests.support import loopback_vendor
    from tests.support.loopback_vendor import LoopbackAdapter

    rt.plugins.register_module(loopback_vendor, "loopback")
    LoopbackAdapter.attempts.clear()
    loopback_vendor.CALLS.clear()
    set_runtime(rt)
    yield rt
    set_runtime(None)


# -- a stand-in vendor, registered only when the real plugin cannot serve -------------------------
REAL_VENDOR = "mqtt_speaker"


class FakeAdapter(VendorAdapter):
    manifest = Manifest(name="fake_vendor", title="Fake vendor for API tests", version="0.0",
                        protocols=("none",), device_kinds=("speaker", "led_board"),
                        capabilities=frozenset({"audio.play_url", "audio.stop", "audio.volume", "led.text",
                                                "led.brightness", "power.switch", "status.heartbeat"}))

    def send(self, batch: Sequence[Outgoing]) -> list[Result]:
        return [Result(o.device.id, Outcome.PENDING) for o in batch]


def _fake_module() -> types.ModuleType:
    mod = types.ModuleType("hub_fake_vendor")

    @hookimpl
    def register_vendors(register: Any) -> None:
        register(FakeAdapter)

    mod.register_vendors = register_vendors
    FakeAdapter.__module__ = mod.__name__
    return mod


@pytest.fixture
def vendors(rt: Runtime) -> dict[str, str]:
    """Vendor for speakers and for LED boards: the real mqtt_speaker plugin when installed."""
    installed = rt.plugins.vendors()
    real = installed.get(REAL_VENDOR)
    out = {}
    for kind in ("speaker", "led_board"):
        if real is not None and kind in real.manifest.device_kinds:
            out[kind] = REAL_VENDOR
    if len(out) < 2:
        rt.plugins.register_module(_fake_module(), "fake_vendor")
        for kind in ("speaker", "led_board"):
            out.setdefault(kind, "fake_vendor")
    return out
