"""Addresses the hub refuses for Modbus controllers (security finding 1): host:port/unit only at
hosts and ports the province allows, never the hub's own services. The adapter checks again."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.addresses import AddressError, AddressPolicy, check_address
from hub.fleet.registry import RegistryError
from hub.testing import HubHarness, loopback_address_policy

from hub_modbus_board.adapter import ModbusBoardAdapter
from modbus_board_helpers import FAST, VENDOR, envelope, only_this_plugin, outgoing

REFUSED = {
    "127.0.0.1:6379/1": "hub_service",  # the hub's Redis
    "localhost:1883/1": "hub_service",  # an MQTT broker
    "[::ffff:127.0.0.1]:8080/1": "hub_service",  # the API, spelt as IPv6
    "10.20.30.40:502/1": "network_not_allowed",
    "plc.example.vn:502/1": "network_not_allowed",
    "0.0.0.0:5020/1": "host",
    "2130706433:5020/1": "host",
    "0x7f.1:5020/1": "host",
    "127.0.0.1:5020": "form",  # no unit
    "tcp://127.0.0.1:5020/1": "scheme",
    "127.0.0.1:99999/1": "port",
    "127.0.0.1:5020/1\r\n": "characters",
}


@pytest.mark.parametrize("address, rule", sorted(REFUSED.items()))
def test_refused_address_forms(address: str, rule: str) -> None:
    with pytest.raises(AddressError) as err:
        check_address(ModbusBoardAdapter.manifest.address, address, loopback_address_policy())
    assert err.value.rule == rule, str(err.value)


def test_allowed_networks_and_ports() -> None:
    from hub.config import Settings

    policy = AddressPolicy.from_settings(Settings(device_networks=["10.80.0.0/16:502", "plc.example.vn:1502"]))
    schema = ModbusBoardAdapter.manifest.address
    check_address(schema, "10.80.3.7/1", policy)  # the default port, 502
    check_address(schema, "plc.example.vn:1502/2", policy)
    for address in ("10.80.3.7:503/1", "10.81.0.1:502/1", "plc.example.vn:502/1"):
        with pytest.raises(AddressError, match="not in device_networks"):
            check_address(schema, address, policy)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubHarness]:
    with HubHarness(tmp_path, VENDOR, dict(FAST), plugins=only_this_plugin(), retry_backoff_s=(0.1,)) as h:
        yield h


def test_the_hub_refuses_registration_naming_the_address(hub: HubHarness) -> None:
    with pytest.raises(RegistryError) as err:
        hub.add_device("M1", "127.0.0.1:6379/1", kind="led_board")
    assert err.value.field == "address" and err.value.status == 422 and "rule: hub_service" in err.value.message


def test_a_planted_row_fails_at_once_without_connecting(hub: HubHarness, make_adapter: Any) -> None:
    hub.add_device("M1", "127.0.0.1:6379/1", kind="led_board", checked=False)
    got = hub.wait(hub.send("led_show", ["M1"], {"text": "x"}).command.id)["M1"]
    assert got.state == "failed" and got.attempts == 1 and got.reason.startswith("address refused:"), got
    adapter = make_adapter()
    [r] = adapter.send([outgoing("127.0.0.1:6379/1", envelope("led_clear"))])
    assert r.outcome.value == "failed" and not r.transient and "hub's own Redis" in r.reason
