"""Relay through a real icecast2 on loopback, end to end: an operator relays a station (itself a
local Icecast fed by ffmpeg) to simulated MQTT speakers through the API; the speakers fetch the
hub's mount and count the bytes; when the station goes off air, Icecast moves them to the fallback
mount on the same connection, the dead air is recorded (table and event bus); relay_stop closes
their streams and their ack reports what they received. Then: a station that stays connected but
falls silent is heard by the dead-air watcher and cut, so listeners fall back."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.access.actors import Actor
from hub.api import create_app
from hub.broadcast.relay.service import RelayService
from hub.broadcast.relay.sessions import FALLBACK_MOUNT
from hub.events import RelayDeadAir, subscribe
from hub.plugins import Plugins
from hub.ports import free_port
from hub.testing import HubHarness
from tests.support.relay import Station, needs_icecast, wait_for
from tests.support.services import MQTT_HOST, MQTT_PORT

pytestmark = needs_icecast
hub_mqtt_speaker = pytest.importorskip("hub_mqtt_speaker")
from hub_mqtt_speaker.device import SimDevice  # noqa: E402
from hub_mqtt_speaker.simulator import Fleet  # noqa: E402

OPERATOR = Actor(name="tinh-admin", roles=frozenset({"administrator"}))


@pytest.fixture
def station() -> Iterator[Station]:
    st = Station()
    try:
        yield st
    finally:
        st.close()


def harness(tmp_path: Path, prefix: str, station_url: str) -> HubHarness:
    plugins = Plugins()
    plugins.load_entry_points(only={"mqtt_speaker", "directory"})
    h = HubHarness(tmp_path, "mqtt_speaker", {"host": MQTT_HOST, "port": MQTT_PORT, "topic_prefix": prefix},
                   plugins=plugins, listen=False)
    stations = tmp_path / "stations.yaml"
    stations.write_text(f"stations:\n  - id: test-fm\n    name: Đài thử\n    url: {station_url}\n", encoding="utf-8")
    s = h.rt.settings
    s.stations_file, s.icecast_port = str(stations), free_port()
    s.relay_dead_air_s, s.relay_retry_s, s.relay_tick_s = 2.0, 600.0, 0.2  # no retry while the test looks
    return h


def relay(client, relay_id: str) -> dict:  # noqa: ANN001
    r = client.get(f"/api/relays/{relay_id}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_relay_reaches_speakers_and_falls_back_without_cutting_them_off(tmp_path: Path, services: None,
                                                                        station: Station) -> None:
    station.start()
    prefix = f"hubtest/relay-{uuid.uuid4().hex[:8]}"
    heard: list[RelayDeadAir] = []
    unsubscribe = subscribe(heard.append, [RelayDeadAir])
    fleet = Fleet(MQTT_HOST, MQTT_PORT, prefix, [SimDevice("spk1"), SimDevice("spk2")], status_interval=5)
    with harness(tmp_path, prefix, station.url) as hub:
        service = RelayService(hub.rt)
        try:
            fleet.start(timeout=30)
            hub.start_ingest()
            hub.run_worker()
            hub.add_device("S1", "spk1")
            hub.add_device("S2", "spk2")
            service.start_thread()
            client = create_app(hub.rt, authenticator=lambda _req: OPERATOR).test_client()
            assert [s["id"] for s in client.get("/api/stations").get_json()] == ["test-fm"]

            r = client.post("/api/relays", json={"station_id": "test-fm", "target": {"devices": ["S1", "S2"]}})
            assert r.status_code == 201, r.get_json()
            session = r.get_json()
            assert session["state"] == "starting" and "source" not in session  # credentials: live sessions only
            started = hub.wait(session["start_command_id"], timeout=20)
            assert {o.state for o in started.values()} == {"acked"}, started

            wait_for(lambda: relay(client, session["id"])["state"] == "on_air", 20, "the relay on air")
            speakers = [fleet.device(a) for a in ("spk1", "spk2")]
            for spk in speakers:
                assert spk.activity == "relaying" and spk.source == session["listen_url"]
            # 64 kbit/s is 8 kB/s: a few seconds of the station at each speaker
            wait_for(lambda: all(spk.streams[-1].bytes_received > 24_000 for spk in speakers), 20,
                     "the station's audio at both speakers")
            wait_for(lambda: relay(client, session["id"])["listeners"] >= 2, 10, "Icecast counting the speakers")
            assert [spk.streams[-1].connects for spk in speakers] == [1, 1]

            station.stop()  # the upstream goes off air
            gone = wait_for(lambda: (lambda s: s if s["state"] == "fallback" else None)(relay(client, session["id"])),
                            20, "the relay on the fallback")
            assert [(e["kind"], e["reason"]) for e in gone["events"] if e["kind"] == "dead_air"] == \
                [("dead_air", "source_lost")]
            assert gone["dead_air"] == 1
            assert [(e.session_id, e.reason) for e in heard] == [(session["id"], "source_lost")]
            wait_for(lambda: (service.icecast.mount_stats(FALLBACK_MOUNT) or None)
                     and service.icecast.mount_stats(FALLBACK_MOUNT).listeners >= 2, 10, "speakers on the fallback")
            before = [spk.streams[-1].bytes_received for spk in speakers]
            wait_for(lambda: all(spk.streams[-1].bytes_received > b + 16_000 for spk, b in zip(speakers, before)),
                     20, "the fallback's audio at both speakers")
            # the same connection all along: moved, not cut off and reconnected
            assert [spk.streams[-1].connects for spk in speakers] == [1, 1]
            assert all(spk.streams[-1].open and spk.streams[-1].error is None for spk in speakers)

            r = client.delete(f"/api/relays/{session['id']}")
            assert r.status_code == 200, r.get_json()
            stopped = hub.wait(r.get_json()["stop_command_id"], timeout=20)
            assert {o.state for o in stopped.values()} == {"acked"}, stopped
            for device_id, spk, b in zip(("S1", "S2"), speakers, before):
                # the device's own report of what the stream brought it, kept with its delivery
                assert stopped[device_id].result["relay_bytes"] >= b + 16_000
                assert stopped[device_id].result["relay_connects"] == 1
                assert not spk.streams[-1].open and spk.activity == "idle"
            wait_for(lambda: relay(client, session["id"])["state"] == "stopped", 10, "the relay stopped")
            assert session["mount"] not in service.icecast.stats()
        finally:
            unsubscribe()
            service.stop()
            fleet.stop()


def test_a_station_gone_silent_is_cut_so_listeners_fall_back(tmp_path: Path, services: None,
                                                             station: Station) -> None:
    from hub.broadcast.relay.sessions import start_session

    station.start("sine=frequency=440:duration=2,apad")  # still sending, nothing to hear after 2 s
    with harness(tmp_path, f"hubtest/relay-{uuid.uuid4().hex[:8]}", station.url) as hub:
        hub.add_device("S1", "spk-silent")
        with RelayService(hub.rt) as service:
            row, _ = start_session(hub.rt, OPERATOR, {"station_id": "test-fm", "target": {"devices": ["S1"]}})
            client = create_app(hub.rt, authenticator=lambda _req: OPERATOR).test_client()
            service.tick()

            def dead_air() -> list[dict]:
                service.tick()
                return [e for e in relay(client, row.id)["events"] if e["kind"] == "dead_air"]

            events = wait_for(dead_air, 30, "dead air heard on the mount")
            assert events[0]["reason"] == "silence"
            wait_for(lambda: service.tick() or relay(client, row.id)["state"] == "fallback", 15,
                     "the silent source cut and its listeners on the fallback")
            assert row.mount not in service.icecast.stats()
