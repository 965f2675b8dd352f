"""What the hub refuses for the HTTP gateway (security finding 1): a device address is the
device's id at the gateway, never a place to connect; base_url must be http(s) without
credentials, at a host and port the province allows, and never one of the hub's own services.
Checked before every request, not only when the plugin loads."""
from __future__ import annotations

from typing import Any

import pytest

from hub.addresses import AddressError, AddressPolicy, check_address, set_default_policy
from hub.config import Settings
from hub.fleet.registry import RegistryError
from hub.testing import loopback_address_policy

from hub_http_gateway.adapter import HttpGatewayAdapter
from http_gateway_helpers import envelope, outgoing

REFUSED_IDS = {"GW1\r\nX-Injected: 1": "characters", " GW1": "characters", "": "empty", "G" * 65: "length"}


@pytest.mark.parametrize("address, rule", sorted(REFUSED_IDS.items()))
def test_refused_device_ids(address: str, rule: str) -> None:
    with pytest.raises(AddressError) as err:
        check_address(HttpGatewayAdapter.manifest.address, address, loopback_address_policy())
    assert err.value.rule == rule


@pytest.mark.parametrize("base_url, refused", [
    ("http://127.0.0.1:6379", "hub's own Redis"),
    ("http://localhost:8080", "hub's own API"),
    ("https://gw.vendor.vn", "not in device_networks"),
    ("http://127.0.0.2:1883", "hub's own MQTT broker"),  # any loopback address
])
def test_a_gateway_outside_the_policy_is_never_requested(base_url: str, refused: str) -> None:
    adapter = HttpGatewayAdapter({"base_url": base_url, "api_key": "k" * 24, "allow_insecure_http": True})
    try:
        [r] = adapter.send([outgoing("GW00001", envelope("stop"))])
        assert r.outcome.value == "failed" and not r.transient and refused in r.reason, r.reason
        assert adapter.health().ok is False and refused in adapter.health().detail
    finally:
        adapter.close()


def test_an_allowed_gateway_host_and_port() -> None:
    set_default_policy(AddressPolicy.from_settings(Settings(device_networks=["gw.vendor.vn:443"])))
    try:
        assert HttpGatewayAdapter({"base_url": "https://gw.vendor.vn", "api_key": "k" * 24}).gateway_refused() is None
        refused = HttpGatewayAdapter({"base_url": "https://gw.vendor.vn:8443", "api_key": "k" * 24}).gateway_refused()
        assert refused is not None and "not in device_networks" in refused
    finally:
        set_default_policy(loopback_address_policy())


def test_the_hub_refuses_a_device_id_with_a_line_break(make_sim: Any, make_hub: Any) -> None:
    hub = make_hub(make_sim(["GW00001"]))
    with pytest.raises(RegistryError) as err:
        hub.add_device("S1", "GW00001\r\nX-Injected: 1")
    assert err.value.field == "address" and "rule: characters" in err.value.message
