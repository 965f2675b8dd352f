"""Fixtures for the http_gateway tests: simulated gateways on loopback, adapters and whole
in-process hubs, each always stopped when its test ends."""
from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hub.testing import HubHarness
from hub.testing_fixtures import MakeHarness, devices_on_loopback, make_harness, sink, stack  # noqa: F401 - fixtures

from hub_http_gateway.adapter import HttpGatewayAdapter
from hub_http_gateway.simulator import GatewaySim
from http_gateway_helpers import VENDOR, only_this_plugin

_devices_on_loopback = devices_on_loopback()  # adapters built by hand reach the simulators


@pytest.fixture
def api_key() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture
def make_sim(api_key: str) -> Iterator[Callable[..., GatewaySim]]:
    sims: list[GatewaySim] = []

    def make(devices: list[str], **kw: Any) -> GatewaySim:
        kw.setdefault("api_key", api_key)
        sim = GatewaySim(devices, **kw)
        sims.append(sim)
        return sim.start()

    yield make
    for sim in sims:
        sim.stop()


@pytest.fixture
def make_adapter(api_key: str) -> Iterator[Callable[..., HttpGatewayAdapter]]:
    adapters: list[HttpGatewayAdapter] = []

    def make(sim: GatewaySim | None = None, **config: Any) -> HttpGatewayAdapter:
        if sim is not None:
            config = {"base_url": sim.url, "api_key": api_key, **config}
        adapter = HttpGatewayAdapter(config)
        adapters.append(adapter)
        adapter.open()
        return adapter

    yield make
    for adapter in adapters:
        adapter.close()


@pytest.fixture
def make_hub(make_harness: MakeHarness, api_key: str) -> Callable[..., HubHarness]:
    """A started HubHarness driving the plugin against `sim`; config keys override the defaults."""
    def make(sim: GatewaySim, *, devices: dict[str, str] | None = None, **config: Any) -> HubHarness:
        # Devices are registered after the hub's first poll went by (the harness must be started
        # to have its area), so a short resync lets unchanged devices' state reach the hub too.
        cfg = {"base_url": sim.url, "api_key": api_key, "timeout_s": 10.0, "poll_interval_s": 0.2,
               "resync_interval_s": 0.5, **config}
        hub = make_harness(VENDOR, cfg, plugins=only_this_plugin(), retry_backoff_s=(0.1, 0.2))
        for device_id, address in (devices or {}).items():
            hub.add_device(device_id, address)
        return hub

    return make
