"""Fixtures for the http_gateway tests: simulated gateways on loopback, adapters and whole
in-process hubs, each always stopped when its test ends."""
from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from hub.addresses import set_default_policy
from hub.testing import HubHarness, loopback_address_policy

from hub_http_gateway.adapter import HttpGatewayAdapter
from hub_http_gateway.simulator import GatewaySim
from http_gateway_helpers import VENDOR, RecordingSink, only_this_plugin


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
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def make_hub(tmp_path: Path, api_key: str) -> Iterator[Callable[..., HubHarness]]:
    """A started HubHarness driving the plugin against `sim`; config keys override the defaults."""
    with ExitStack() as stack:
        def make(sim: GatewaySim, *, devices: dict[str, str] | None = None, **config: Any) -> HubHarness:
            # Devices are registered after the hub's first poll went by (the harness must be started
            # to have its area), so a short resync lets unchanged devices' state reach the hub too.
            cfg = {"base_url": sim.url, "api_key": api_key, "timeout_s": 10.0, "poll_interval_s": 0.2,
                   "resync_interval_s": 0.5, **config}
            hub = stack.enter_context(HubHarness(tmp_path, VENDOR, cfg, plugins=only_this_plugin(),
                                                 retry_backoff_s=(0.1, 0.2)))
            for device_id, address in (devices or {}).items():
                hub.add_device(device_id, address)
            return hub

        yield make


@pytest.fixture(autouse=True)
def _devices_on_loopback() -> Iterator[None]:
    """Adapters built by hand reach the simulators on loopback ports (hub.addresses)."""
    set_default_policy(loopback_address_policy())
    yield
    set_default_policy(None)
