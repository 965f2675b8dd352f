"""End to end through the hub to the Modbus amplifier profile, on pymodbus servers on loopback."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from hub.simulation import UnsupportedFault
from hub.testing import HubHarness
from hub.units import from_vendor_scale, to_vendor_scale
from hub.vendor import DeviceRef

from hub_profiles.modbus_adapter import Endpoint, parse_address
from hub_profiles.modbus_sim import ProfileModbusFleet
from hub_profiles.model import ModbusSettings
from profiles_helpers import builtin, free_port, profiles_plugins

MakeHarness = Callable[..., HubHarness]
MakeFleet = Callable[..., ProfileModbusFleet]


def test_set_volume_writes_the_scaled_register_and_verifies_it(harness: MakeHarness, modbus_fleet: MakeFleet) -> None:
    fleet = modbus_fleet(builtin("modbus_amp"))
    [address] = fleet.addresses
    device = fleet.device(address)
    hub = harness("modbus_amp")
    hub.add_device("M1", address)

    got = hub.wait(hub.send("set_volume", ["M1"], {"level": 80}).command.id)["M1"]
    register = to_vendor_scale(80, 0, 31)
    assert register == 25 and device.value("register", 1) == 25
    assert device.writes == [("register", 1, [25])]
    # Acked only after reading register 1 back; the read-back is reported on the hub's scale.
    assert got.state == "acked" and got.result == {"volume": from_vendor_scale(25, 0, 31)} == {"volume": 81}

    on = hub.wait(hub.send("power", ["M1"], {"on": True}).command.id)["M1"]
    assert on.state == "acked" and on.result == {"power": True, "activity": "idle"}
    assert device.value("register", 0) == 1
    off = hub.wait(hub.send("power", ["M1"], {"on": False}).command.id)["M1"]
    assert off.result == {"power": False, "activity": "off"} and device.value("register", 0) == 0


def test_a_write_that_does_not_hold_fails_with_what_was_read(harness: MakeHarness, modbus_fleet: MakeFleet) -> None:
    fleet = modbus_fleet(builtin("modbus_amp"))
    [address] = fleet.addresses
    fleet.device(address).stuck.add(("register", 1))  # a dead volume potentiometer
    hub = harness("modbus_amp")
    hub.add_device("M1", address)
    got = hub.wait(hub.send("set_volume", ["M1"], {"level": 100}).command.id)["M1"]
    assert got.state == "failed" and got.attempts == 1  # the device answered; retrying will not help
    assert got.reason == "read back 16 from register 1 after writing 31 to register 1"
    assert got.result == {"volume": 52}


@pytest.mark.parametrize("fault,reason", [
    ("misreports_volume", "read back 31 from register 1 after writing 25 to register 1"),
    ("acks_without_acting", "read back 16 from register 1 after writing 25 to register 1"),
    ("rejects_all", "device refused writing register 1 (Modbus exception 4)"),
])
def test_fault_modes_are_caught(harness: MakeHarness, fault: str, reason: str) -> None:
    plugins = profiles_plugins()
    make = plugins.simulators()["modbus_amp"]
    address = f"127.0.0.1:{free_port()}/1"
    devices = [DeviceRef(id="M1", address=address, kind="speaker")]
    with pytest.raises(UnsupportedFault, match="no_heartbeat"):
        make({}, devices, faults={address: {"no_heartbeat"}})
    sim = make({}, devices, faults={address: {fault}})
    sim.start()
    try:
        hub = harness("modbus_amp", plugins=plugins)
        hub.add_device("M1", address)
        got = hub.wait(hub.send("set_volume", ["M1"], {"level": 80}).command.id)["M1"]
        assert got.state == "failed" and got.reason == reason, got
    finally:
        sim.stop()


def test_an_unreachable_or_silent_device_is_retried_then_failed(harness: MakeHarness, modbus_fleet: MakeFleet) -> None:
    silent = modbus_fleet(builtin("modbus_amp"), faults=None)
    silent.devices[0].faults.add("silent")
    nobody = f"127.0.0.1:{free_port()}/1"
    hub = harness("modbus_amp", {"timeout_s": 0.5, "retries": 0})
    hub.add_device("M1", nobody)
    hub.add_device("M2", silent.addresses[0])
    got = hub.wait(hub.send("power", ["M1", "M2"], {"on": True}).command.id, timeout=30)
    for dev in ("M1", "M2"):
        assert got[dev].state == "failed" and got[dev].attempts == 3, got
        assert got[dev].reason and got[dev].reason.startswith("gave up after 3 attempts: Modbus 127.0.0.1:")


def test_a_bad_address_fails_at_once(harness: MakeHarness) -> None:
    hub = harness("modbus_amp")
    hub.add_device("M1", "amp-in-the-market:notaport", checked=False)  # the hub now refuses it at registration
    got = hub.wait(hub.send("power", ["M1"], {"on": True}).command.id)["M1"]
    assert got.state == "failed" and got.attempts == 1
    assert got.reason == "power: device address 'amp-in-the-market:notaport' is not host[:port][/unit]"


def test_watched_devices_are_polled_for_status_and_faults(harness: MakeHarness, modbus_fleet: MakeFleet) -> None:
    fleet = modbus_fleet(builtin("modbus_amp"), count=2)
    first, second = fleet.addresses
    hub = harness("modbus_amp", {"poll_interval_s": 0.2, "timeout_s": 0.5, "retries": 0})
    hub.add_device("M1", first)
    hub.add_device("M2", second)
    assert hub.ingest is not None
    hub.ingest.refresh_watch()  # the ingest hands adapters the registry's devices (watch())
    st = hub.wait_status("M1", lambda s: s["volume"] == 52)
    assert st is not None and st["volume"] == 52 and st["power"] is False and st["faults"] == []
    fleet.device(first).set_value("register", 2, 0b101)  # speaker line open, mains lost
    st = hub.wait_status("M1", lambda s: s["faults"])
    assert st is not None and st["faults"] == ["speaker_line", "mains_lost"]
    fleet.device(second).faults.add("silent")
    assert hub.wait_status("M2", lambda s: s["online"] is False, timeout=15)["online"] is False  # type: ignore[index]


def test_addresses() -> None:
    d = ModbusSettings(port=502, unit=1)
    assert parse_address("10.20.0.15", d) == Endpoint("10.20.0.15", 502, 1)
    assert parse_address("amp-07.xa-tan-phu.local:1502/3", d) == Endpoint("amp-07.xa-tan-phu.local", 1502, 3)
    assert parse_address("[fd00::7]:502/0", d) == Endpoint("fd00::7", 502, 0)
    for bad in ("", "10.0.0.1:99999", "10.0.0.1/300", "a b"):
        with pytest.raises(ValueError):
            parse_address(bad, d)


def test_the_simulator_listens_on_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback only"):
        ProfileModbusFleet(builtin("modbus_amp"), ["192.0.2.10:502/1"])
