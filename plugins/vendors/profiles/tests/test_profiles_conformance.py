"""What certification (`hub certify`) asks of the profile vendors, shown on running simulators:
garbage status is refused, an expired command is never carried out, status arrives on its own,
the simulators' witness tells the truth, and a cut link is seen and recovered from."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from hub.testing import HubHarness
from hub.vendor import DeviceRef, Envelope, Outcome, StatusParseError

from hub_profiles.modbus_sim import ProfileModbusFleet
from hub_profiles.mqtt_sim import ProfileMqttFleet
from hub_profiles.plugin import conformance_setup
from profiles_helpers import (BROKER_HOST, BROKER_PORT, Wire, builtin, envelope, outgoing,
                              profiles_plugins, wait_until)

MakeHarness = Callable[..., HubHarness]
MakeModbus = Callable[..., ProfileModbusFleet]
MakeMqtt = Callable[..., ProfileMqttFleet]
GARBAGE = (b"", b"   ", b"\xff\xfe\x00\x01\x80", b'{"truncated": ', b"{}", b"[]")


def config(prefix: str) -> dict[str, Any]:
    return {"host": BROKER_HOST, "port": BROKER_PORT, "topic_prefix": prefix}


def expired(verb: str, params: dict[str, Any]) -> Envelope:
    env = envelope(verb, params)
    return Envelope(env.command_id, verb, params, "normal", datetime.now(timezone.utc) - timedelta(minutes=5))


@pytest.mark.parametrize("vendor", ["tasmota_amp", "modbus_amp"])
@pytest.mark.parametrize("payload", GARBAGE)
def test_profiles_garbage_status_is_refused(vendor: str, payload: bytes) -> None:
    adapter = profiles_plugins().vendors()[vendor]({})
    with pytest.raises(StatusParseError, match="status from A1"):
        adapter.parse_status("A1", payload)


def test_profiles_a_real_status_still_parses() -> None:
    vendors = profiles_plugins().vendors()
    st = vendors["tasmota_amp"]({}).parse_status("A1", b'{"POWER":"ON","Volume":15}')
    assert st["power"] is True and st["volume"] == 100
    st = vendors["modbus_amp"]({}).parse_status("M1", b'{"register:1": 31}')  # a partial snapshot is still news
    assert st["volume"] == 100


def test_profiles_modbus_expired_command_is_refused_and_not_written(modbus_fleet: MakeModbus) -> None:
    fleet = modbus_fleet(builtin("modbus_amp"))
    [address] = fleet.addresses
    adapter = profiles_plugins().vendors()["modbus_amp"]({"timeout_s": 0.5})
    adapter.open()
    try:
        [res] = adapter.send([outgoing(address, expired("set_volume", {"level": 90}))])
    finally:
        adapter.close()
    assert res.outcome is Outcome.FAILED and not res.transient
    assert res.reason and res.reason.startswith("expired: the set_volume command expired at ")
    assert fleet.device(address).writes == [] and fleet.device(address).value("register", 1) == 16


def test_profiles_mqtt_expired_command_is_refused_and_never_published(mqtt_fleet: MakeMqtt, prefix: str,
                                                                      token: str, wire: Callable[[str], Wire]) -> None:
    address = f"amp{token}"
    fleet = mqtt_fleet(builtin("tasmota_amp"), [address])
    sent = wire(f"{prefix}/cmnd/#")
    adapter = profiles_plugins().vendors()["tasmota_amp"](config(prefix))
    adapter.open()
    try:
        [old] = adapter.send([outgoing(address, expired("power", {"on": True}))])
        [fresh] = adapter.send([outgoing(address, envelope("power", {"on": True}))])  # the wire works
    finally:
        adapter.close()
    assert old.outcome is Outcome.FAILED and not old.transient and (old.reason or "").startswith("expired: ")
    assert fresh.outcome is Outcome.ACKED
    assert sent.wait_for(f"{prefix}/cmnd/{address}/POWER") == [b"ON"]  # only the fresh one went out
    assert len(fleet.device(address).commands("power")) == 1


def test_profiles_mqtt_simulator_reports_status_at_the_interval_it_is_given(harness: MakeHarness, prefix: str,
                                                                           token: str) -> None:
    plugins = profiles_plugins()
    address = f"amp{token}"
    # The factory takes the certification's heartbeat interval, instead of the profile's 30 s.
    sim = plugins.simulators()["tasmota_amp"](config(prefix), [DeviceRef(id="A1", address=address, kind="speaker")],
                                             status_interval=0.3)
    sim.start()
    try:
        hub = harness("tasmota_amp", config(prefix), plugins=plugins)
        hub.add_device("A1", address)
        seen: list[Any] = []

        def heard() -> bool:
            st = hub.status("A1")
            if st is not None and st["last_seen_at"] not in seen:
                seen.append(st["last_seen_at"])
            return len(seen) >= 4

        assert wait_until(heard, timeout=5, interval=0.05), seen
    finally:
        sim.stop(clear_retained=True)


def test_profiles_modbus_is_polled_at_the_certification_heartbeat(harness: MakeHarness) -> None:
    setup = conformance_setup("modbus_amp", "run1", {"heartbeat_interval_s": 1.0})
    assert setup is not None and setup["config"]["poll_interval_s"] == 0.5
    assert conformance_setup("tasmota_amp", "run1", {})["config"]["topic_prefix"] == "hubconf/run1"  # type: ignore[index]
    assert conformance_setup("someone_else", "run1", {}) is None
    plugins = profiles_plugins()
    [device] = setup["devices"]
    sim = plugins.simulators()["modbus_amp"](setup["config"], [DeviceRef(id="M1", **device)])
    sim.start()
    try:
        hub = harness("modbus_amp", setup["config"], plugins=plugins)
        hub.add_device("M1", device["address"])
        assert hub.ingest is not None
        hub.ingest.refresh_watch()
        seen: list[Any] = []

        def heard() -> bool:
            st = hub.status("M1")
            if st is not None and st["last_seen_at"] not in seen:
                seen.append(st["last_seen_at"])
            return len(seen) >= 4

        assert wait_until(heard, timeout=5, interval=0.05), seen
    finally:
        sim.stop()


def test_profiles_witness_sees_the_true_volume_of_a_misreporting_device(harness: MakeHarness,
                                                                        modbus_fleet: MakeModbus) -> None:
    fleet = modbus_fleet(builtin("modbus_amp"), faults=None)
    [address] = fleet.addresses
    device = fleet.device(address)
    device.faults.add("misreports_volume")
    hub = harness("modbus_amp")
    hub.add_device("M1", address)
    got = hub.wait(hub.send("set_volume", ["M1"], {"level": 81}).command.id)["M1"]
    # The amplifier plays at 25 (81 on the hub's scale) but its register reads 31: the read-back
    # catches it, and the witness still tells what is really heard.
    assert got.state == "failed" and got.reason == "read back 31 from register 1 after writing 25 to register 1"
    assert fleet.observe(address) == {"activity": "off", "power": False, "volume": 81, "brightness": None}


def test_profiles_mqtt_witness_and_link_loss(harness: MakeHarness, mqtt_fleet: MakeMqtt, prefix: str,
                                             token: str) -> None:
    address = f"amp{token}"
    fleet = mqtt_fleet(builtin("tasmota_amp"), [address], faults={address: {"misreports_volume"}})
    assert fleet.observe(address) == {"activity": "off", "power": False, "volume": 53, "brightness": None}
    hub = harness("tasmota_amp", config(prefix))
    hub.add_device("A1", address)
    assert hub.wait_status("A1", lambda s: s["online"] is True and s["volume"] is not None)["volume"] == 73  # type: ignore[index]

    fleet.cut_link(address)  # no DISCONNECT: the broker publishes the last will
    assert hub.wait_status("A1", lambda s: s["online"] is False, timeout=10)["online"] is False  # type: ignore[index]
    fleet.restore_link(address)
    assert hub.wait_status("A1", lambda s: s["online"] is True, timeout=10)["online"] is True  # type: ignore[index]
    on = hub.wait(hub.send("power", ["A1"], {"on": True}).command.id)["A1"]
    assert on.state == "acked" and fleet.observe(address)["power"] is True


def test_profiles_modbus_link_loss_is_seen_and_recovered(harness: MakeHarness, modbus_fleet: MakeModbus) -> None:
    fleet = modbus_fleet(builtin("modbus_amp"))
    [address] = fleet.addresses
    hub = harness("modbus_amp", {"poll_interval_s": 0.2, "timeout_s": 0.3, "retries": 0})
    hub.add_device("M1", address)
    assert hub.ingest is not None
    hub.ingest.refresh_watch()
    assert hub.wait_status("M1", lambda s: s["online"] is True)["online"] is True  # type: ignore[index]
    fleet.cut_link(address)
    assert hub.wait_status("M1", lambda s: s["online"] is False, timeout=10)["online"] is False  # type: ignore[index]
    fleet.restore_link(address)
    assert hub.wait_status("M1", lambda s: s["online"] is True, timeout=10)["online"] is True  # type: ignore[index]


# Certification of both vendors on these simulators, and their fault matrices, run in
# conformance/tests/test_conformance_vendors.py with the other vendor plugins of this tree.


def test_profiles_a_certification_run_waits_for_echoes_no_longer_than_its_ack_limit() -> None:
    # A device that has not echoed within the suite's ack limit has failed that check already;
    # waiting Tasmota's 5 s three times per command made each fault run minutes longer.
    setup = conformance_setup(vendor="tasmota_amp", run_id="r1", parameters={"ack_timeout_s": 3.0})
    assert setup["config"]["echo_timeout_s"] == 3.0
    assert setup["config"]["topic_prefix"] == "hubconf/r1"
