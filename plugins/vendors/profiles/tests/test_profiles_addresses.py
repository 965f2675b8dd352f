"""Addresses the hub refuses for profile devices (security finding 1): a Modbus profile's device
is host[:port][/unit] the province allows, never the hub's own services; an MQTT profile's is one
topic level. The Modbus driver checks again before it connects (its poll_addresses too)."""
from __future__ import annotations

from typing import Any

import pytest

from hub.addresses import AddressError, check_address
from hub.fleet.registry import RegistryError
from hub.testing import RecordingSink, loopback_address_policy

from hub_profiles.adapters import adapter_class
from profiles_helpers import builtin

MODBUS_REFUSED = {
    "127.0.0.1:6379/1": "hub_service",
    "localhost:8883": "hub_service",
    "10.1.2.3:502/1": "network_not_allowed",
    "0.0.0.0:502/1": "host",
    "modbus://127.0.0.1:5020/1": "scheme",
    "127.0.0.1:5020/x": "form",
}
MQTT_REFUSED = {"amp/1": "mqtt_topic_segment", "amp+": "mqtt_topic_segment", "#": "mqtt_topic_segment",
                "amp\x00": "mqtt_topic_segment", "": "empty", "amp\r\n": "characters"}


@pytest.mark.parametrize("address, rule", sorted(MODBUS_REFUSED.items()))
def test_modbus_profile_refused_address_forms(address: str, rule: str) -> None:
    with pytest.raises(AddressError) as err:
        check_address(adapter_class(builtin("modbus_amp")).manifest.address, address, loopback_address_policy())
    assert err.value.rule == rule, str(err.value)


@pytest.mark.parametrize("address, rule", sorted(MQTT_REFUSED.items()))
def test_mqtt_profile_refused_address_forms(address: str, rule: str) -> None:
    with pytest.raises(AddressError) as err:
        check_address(adapter_class(builtin("tasmota_amp")).manifest.address, address, loopback_address_policy())
    assert err.value.rule == rule, str(err.value)


def test_modbus_profile_accepts_allowed_addresses() -> None:
    schema = adapter_class(builtin("modbus_amp")).manifest.address
    for address in ("127.0.0.1:5020/1", "127.0.0.1:5020", "[::1]:5020/3"):
        check_address(schema, address, loopback_address_policy())


def test_the_hub_refuses_registration_naming_the_address(harness: Any) -> None:
    hub = harness("modbus_amp")
    with pytest.raises(RegistryError) as err:
        hub.add_device("M1", "127.0.0.1:6379/1")
    assert err.value.field == "address" and "rule: hub_service" in err.value.message


def test_a_planted_row_and_a_configured_poll_address_never_reach_redis(harness: Any) -> None:
    hub = harness("modbus_amp", {"timeout_s": 0.5, "retries": 0})
    hub.add_device("M1", "127.0.0.1:6379/1", checked=False)
    got = hub.wait(hub.send("power", ["M1"], {"on": True}).command.id)["M1"]
    assert got.state == "failed" and got.attempts == 1 and "hub's own Redis" in got.reason, got
    adapter = adapter_class(builtin("modbus_amp"))({"poll_addresses": ["127.0.0.1:6379/1"]})
    try:
        adapter.listen(RecordingSink())
        with pytest.raises(AddressError):
            adapter.read_status("127.0.0.1:6379/1")
    finally:
        adapter.close()
