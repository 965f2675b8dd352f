"""End to end through the hub (HubHarness: real dispatch, rq job, ingest) to devices that only a
profile describes, simulated on the real broker."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hub.simulation import UnsupportedFault
from hub.testing import HubHarness
from hub.units import from_vendor_scale, to_vendor_scale
from hub.vendor import DeviceRef

from hub_profiles.mqtt_sim import ProfileMqttFleet
from hub_profiles.validate import load_file
from profiles_helpers import (BOARD, BROKER_HOST, BROKER_PORT, Wire, builtin, builtin_text, profiles_plugins,
                             write_profile)

VIETNAMESE = "Thông báo khẩn: bão số 3"
MakeHarness = Callable[..., HubHarness]
MakeFleet = Callable[..., ProfileMqttFleet]
MakeWire = Callable[[str], Wire]


def config(prefix: str) -> dict[str, Any]:
    return {"host": BROKER_HOST, "port": BROKER_PORT, "topic_prefix": prefix}


def fast_tasmota(profile_dir: Path) -> None:
    """The built-in profile with a 1 s echo timeout, so tests of silence stay short."""
    text = builtin_text("tasmota_amp").replace("name: tasmota_amp", "name: tasmota_fast")
    write_profile(profile_dir, "tasmota_fast.yaml", text.replace("timeout_s: 5", "timeout_s: 1"))


def test_power_and_volume_through_the_hub(harness: MakeHarness, mqtt_fleet: MakeFleet, wire: MakeWire,
                                          prefix: str, token: str) -> None:
    address = f"amp{token}"
    fleet = mqtt_fleet(builtin("tasmota_amp"), [address])
    sent = wire(f"{prefix}/cmnd/{address}/#")
    hub = harness("tasmota_amp", config(prefix))
    hub.add_device("A1", address)

    on = hub.wait(hub.send("power", ["A1"], {"on": True}).command.id)["A1"]
    assert (on.state, on.result) == ("acked", {"power": True}), on
    off = hub.wait(hub.send("power", ["A1"], {"on": False}).command.id)["A1"]
    assert (off.state, off.result) == ("acked", {"power": False}), off
    wire_level = to_vendor_scale(73, 0, 15)
    vol = hub.wait(hub.send("set_volume", ["A1"], {"level": 73}).command.id)["A1"]
    assert vol.state == "acked" and vol.result == {"volume": from_vendor_scale(wire_level, 0, 15)} == {"volume": 73}

    # On the wire exactly what the template and its mapping say: plain text, the 0–15 scale.
    assert sent.wait_for(f"{prefix}/cmnd/{address}/POWER", 2) == [b"ON", b"OFF"]
    assert sent.wait_for(f"{prefix}/cmnd/{address}/Volume") == [str(wire_level).encode()] == [b"11"]
    device = fleet.device(address)
    assert device.value("POWER") == "OFF" and device.value("Volume") == 11

    # Status comes back through the profile's mapping, scaled to the hub's 0–100.
    st = hub.wait_status("A1", lambda s: s["volume"] == 73 and s["power"] is False)
    assert st is not None and st["volume"] == 73 and st["power"] is False and st["activity"] == "off"
    assert st["online"] is True and st["signal"] == {"network": "wifi", "quality": 76, "rssi_dbm": -62}


def test_presence_follows_the_last_will(harness: MakeHarness, mqtt_fleet: MakeFleet, wire: MakeWire,
                                        prefix: str, token: str) -> None:
    address = f"amp{token}"
    fleet = mqtt_fleet(builtin("tasmota_amp"), [address])
    lwt = f"{prefix}/tele/{address}/LWT"
    watcher = wire(lwt)
    hub = harness("tasmota_amp", config(prefix))
    hub.add_device("A1", address)
    assert hub.wait_status("A1", lambda s: s["online"] is True)["online"] is True  # type: ignore[index]
    fleet.stop()  # publishes Offline, as the broker would for a dead link
    assert hub.wait_status("A1", lambda s: s["online"] is False)["online"] is False  # type: ignore[index]
    assert watcher.wait_for(lwt, 2)[-1] == b"Offline"
    watcher.client.publish(lwt, b"", qos=1, retain=True).wait_for_publish(5)  # leave no retained message


def test_a_device_that_never_confirms_fails_after_retries(harness: MakeHarness, mqtt_fleet: MakeFleet,
                                                          profile_dir: Path, prefix: str, token: str) -> None:
    fast_tasmota(profile_dir)
    address = f"amp{token}"
    profile, _ = load_file(profile_dir / "tasmota_fast.yaml")
    fleet = mqtt_fleet(profile, [address], faults={address: {"silent"}})
    hub = harness("tasmota_fast", config(prefix))
    hub.add_device("A1", address)
    got = hub.wait(hub.send("power", ["A1"], {"on": True}).command.id, timeout=30)["A1"]
    assert got.state == "failed" and got.attempts == 3, got
    assert got.reason == "gave up after 3 attempts: device did not report POWER=ON within 1s"
    assert len(fleet.device(address).commands("power")) == 3  # states are idempotent: resending is safe
    assert fleet.device(address).value("POWER") == "ON"  # it acted, it only never said so


def test_the_site_sets_how_long_to_wait_for_an_echo(harness: MakeHarness, mqtt_fleet: MakeFleet,
                                                    prefix: str, token: str) -> None:
    # The built-in profile says 5 s; a site on a fast LAN (or a certification run) says 0.5 s.
    address = f"amp{token}"
    mqtt_fleet(builtin("tasmota_amp"), [address], faults={address: {"silent"}})
    hub = harness("tasmota_amp", {**config(prefix), "echo_timeout_s": 0.5})
    hub.add_device("A1", address)
    got = hub.wait(hub.send("power", ["A1"], {"on": True}).command.id, timeout=30)["A1"]
    assert got.state == "failed" and got.attempts == 3, got
    assert got.reason == "gave up after 3 attempts: device did not report POWER=ON within 0.5s"


def test_a_misreported_volume_is_not_taken_for_a_confirmation(harness: MakeHarness, profile_dir: Path,
                                                              prefix: str, token: str) -> None:
    fast_tasmota(profile_dir)
    plugins = profiles_plugins()
    make = plugins.simulators()["tasmota_fast"]
    address = f"amp{token}"
    devices = [DeviceRef(id="A1", address=address, kind="speaker")]
    with pytest.raises(UnsupportedFault, match="mangles_diacritics"):
        make(config(prefix), devices, faults={address: {"mangles_diacritics"}})
    sim = make(config(prefix), devices, faults={address: {"misreports_volume"}})
    sim.start()
    try:
        hub = harness("tasmota_fast", config(prefix), plugins=plugins, retry_backoff_s=())
        hub.add_device("A1", address)
        got = hub.wait(hub.send("set_volume", ["A1"], {"level": 40}).command.id, timeout=20)["A1"]
        assert got.state == "failed" and "did not report Volume=6" in (got.reason or ""), got
    finally:
        sim.stop(clear_retained=True)


def test_reply_acks_json_payloads_and_vietnamese_text(harness: MakeHarness, mqtt_fleet: MakeFleet, wire: MakeWire,
                                                      profile_dir: Path, prefix: str, token: str) -> None:
    write_profile(profile_dir, "reply_board.yaml", BOARD)
    profile, errors = load_file(profile_dir / "reply_board.yaml")
    assert profile is not None, errors
    good, bad = f"led{token}", f"bad{token}"
    fleet = mqtt_fleet(profile, [good, bad], faults={bad: {"rejects_all"}})
    sent = wire(f"{prefix}/+/show")
    hub = harness("reply_board", config(prefix))
    hub.add_device("L1", good, kind="led_board")
    hub.add_device("L2", bad, kind="led_board")

    sub = hub.send("led_show", ["L1", "L2"], {"text": VIETNAMESE, "duration_s": 30})
    got = hub.wait(sub.command.id)
    assert got["L1"].state == "acked", got
    assert got["L2"].state == "failed" and got["L2"].reason == "device refused: device fault", got
    [raw] = sent.wait_for(f"{prefix}/{good}/show")
    assert VIETNAMESE.encode("utf-8") in raw  # UTF-8 on the wire, never \\u escapes
    assert json.loads(raw) == {"id": sub.command.id, "text": VIETNAMESE, "effect": "scroll", "seconds": 30}
    assert fleet.device(good).commands("led_show")[0].values["text"] == VIETNAMESE

    cleared = hub.wait(hub.send("led_clear", ["L1"]).command.id)["L1"]
    assert cleared.state == "acked"
    power = hub.wait(hub.send("power", ["L1"], {"on": False}).command.id)["L1"]
    assert (power.state, power.result) == ("acked", {"confirmed_by": "broker"})  # ack: none


def test_a_command_the_profile_cannot_render_fails_without_retry(harness: MakeHarness, mqtt_fleet: MakeFleet,
                                                                 profile_dir: Path, prefix: str, token: str) -> None:
    write_profile(profile_dir, "reply_board.yaml", BOARD)
    profile, _ = load_file(profile_dir / "reply_board.yaml")
    mqtt_fleet(profile, [f"led{token}"])
    hub = harness("reply_board", config(prefix))
    hub.add_device("L1", f"led{token}", kind="led_board")
    got = hub.wait(hub.send("led_show", ["L1"], {"text": "Họp dân lúc 19h"}).command.id)["L1"]
    # The profile sends params.duration_s, which this command does not carry and has no default.
    assert got.state == "failed" and got.attempts == 1
    assert got.reason == "led_show: the led_show command carries no params.duration_s"
