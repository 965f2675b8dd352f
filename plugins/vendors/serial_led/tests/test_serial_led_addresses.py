"""Addresses the hub refuses for serial_led boards (security finding 1): never the hub's own
Redis, never a pyserial URL that reads or writes files, loops back or searches for ports; device
paths only under the configured prefixes. The adapter and the bus check again."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.addresses import AddressError, AddressPolicy, check_address
from hub.fleet.registry import RegistryError
from hub.testing import loopback_address_policy

from hub_serial_led.adapter import SerialLedAdapter
from hub_serial_led.bus import Bus, PortSettings, PortUnavailable
from serial_led_helpers import device, outgoing

REFUSED = {  # address -> the rule broken
    "socket://127.0.0.1:6379#8": "hub_service",  # the hub's Redis (finding 1)
    "socket://localhost:6379#8": "hub_service",
    "socket://127.0.0.1:1883#1": "hub_service",  # an MQTT broker
    "socket://127.0.0.1:8080#1": "hub_service",  # the API
    "socket://10.9.9.9:4001#1": "network_not_allowed",
    "socket://2130706433:4001#1": "host",  # 127.0.0.1 in disguise
    "socket://user@127.0.0.1:4001#1": "form",
    "socket://127.0.0.1:4001/x?logging=debug#1": "form",
    "spy:///dev/null?file=/var/hub/hub.sqlite3#3": "scheme",
    "loop://#1": "scheme",
    "rfc2217://127.0.0.1:7000#1": "scheme",
    "hwgrep://.*#1": "scheme",
    "alt:///dev/ttyUSB0?class=Serial#1": "scheme",
    "cp2110://0001:0002:00#1": "scheme",
    "/etc/passwd#1": "serial_prefix",
    "/dev/ttyUSB0/../../etc/shadow#1": "serial_path",
    "/dev/ttyUSB0\r\nSET x 1#1": "characters",
}


@pytest.mark.parametrize("address, rule", sorted(REFUSED.items()))
def test_refused_address_forms(address: str, rule: str) -> None:
    with pytest.raises(AddressError) as err:
        check_address(SerialLedAdapter.manifest.address, address, loopback_address_policy())
    assert err.value.rule == rule, str(err.value)


@pytest.mark.parametrize("address", ["/dev/ttyUSB0#1", "/dev/serial/by-id/usb-FTDI_FT232R-if00-port0#254",
                                     "socket://127.0.0.1:4001#5"])
def test_accepted_address_forms(address: str) -> None:
    check_address(SerialLedAdapter.manifest.address, address, loopback_address_policy())


def test_no_network_converter_until_the_province_allows_one() -> None:
    with pytest.raises(AddressError, match="not in device_networks"):
        check_address(SerialLedAdapter.manifest.address, "socket://127.0.0.1:4001#5", AddressPolicy())


def test_the_hub_refuses_registration_naming_the_address(make_hub: Any) -> None:
    hub = make_hub()
    with pytest.raises(RegistryError) as err:
        hub.add_device("B1", "spy:///dev/null?file=/tmp/x#1", kind="led_board")
    assert err.value.field == "address" and err.value.status == 422 and "rule: scheme" in err.value.message


def test_a_planted_row_fails_without_opening_anything(make_hub: Any, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me", encoding="utf-8")
    hub = make_hub()
    hub.add_device("B1", f"spy:///dev/null?file={victim}#1", kind="led_board", checked=False)
    got = hub.wait(hub.send("led_show", ["B1"], {"text": "x"}).command.id)["B1"]
    assert got.state == "failed" and got.attempts == 1 and got.reason.startswith("address refused:"), got
    assert victim.read_text(encoding="utf-8") == "keep me"


def test_the_adapter_refuses_before_opening_a_port(tmp_path: Path) -> None:
    adapter = SerialLedAdapter({"lock_dir": str(tmp_path), "poll_interval_s": 0})
    try:
        [r] = adapter.send([outgoing(device("loop://#1"), "led_clear")])
        assert r.outcome.value == "failed" and not r.transient and "scheme" in r.reason
        assert adapter.health().detail == "no port used yet"
    finally:
        adapter.close()


def test_the_bus_itself_never_hands_pyserial_another_scheme(tmp_path: Path) -> None:
    from hub_serial_led.frame import Frame

    victim = tmp_path / "victim"
    victim.write_text("keep me", encoding="utf-8")
    bus = Bus(f"spy:///dev/null?file={victim}", PortSettings(lock_dir=str(tmp_path)))
    try:
        with pytest.raises(PortUnavailable, match="refused"):
            bus.transact(Frame(1, 0x20, b""), 0.1)
    finally:
        bus.close()
    assert victim.read_text(encoding="utf-8") == "keep me"
