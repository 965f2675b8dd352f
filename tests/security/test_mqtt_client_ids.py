"""A device's password must not let it take over another client's MQTT id.

Mosquitto disconnects a client when another connects under the same client id. With client ids
free for every account, a password pulled from one speaker connects as `spk-b` and silences
speaker B (its commands then end `expired`), or as the ingest's listener and steals the devices'
acks. production.conf binds a client id to its account on the devices' listener; the hub's own
processes, on their own listener, keep the distinct ids they need. Against a private Mosquitto
run from the shipped production.conf and files written by `hub mqtt credentials`.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from hub.access import mqtt_credentials as mc
from hub.mqtt import listener_client, make_client
from hub.testing import wait_until

PREFIX = "prov/spk"
CONNECTED = 0


def _credentials(tmp_path: Path) -> dict[str, str]:
    accounts = mc.plan([("SPK-A", "spk-a", PREFIX), ("SPK-B", "spk-b", PREFIX)], "hub", [PREFIX], {})
    mc.write(tmp_path / "creds", accounts)
    return {a.username: a.password for a in accounts}


def _hub_settings(broker: Any, password: str, **extra: Any) -> dict[str, Any]:
    return {"client_id": "hub-sender", "username": "hub", "password": password, "tls": False, "ca_file": None,
            "max_inflight": 100, "connect_timeout_s": 10, "host": "127.0.0.1", "port": broker.hub_port,
            "keepalive_s": 30, **extra}


def test_a_device_password_cannot_disconnect_another_device(tmp_path: Path, production_broker, peers) -> None:
    pw = _credentials(tmp_path)
    broker = production_broker(tmp_path / "creds")
    b = peers("spk-b", broker.device_port, "spk-b", pw["spk-b"], ca=broker.ca)
    assert b.rc == CONNECTED and b.subscribe(f"{PREFIX}/spk-b/cmd") == [1]
    hub = peers("hub-sender-1", broker.hub_port, "hub", pw["hub"])
    assert hub.rc == CONNECTED

    # speaker A's own password, speaker B's client id, on the devices' listener
    a = peers("spk-b", broker.device_port, "spk-a", pw["spk-a"], ca=broker.ca)
    assert a.rc is not None, broker.log()
    time.sleep(1.0)  # a takeover disconnects B at once; give the broker time to have done it
    assert b.disconnects == [], f"speaker B was disconnected by speaker A's password: {broker.log()}"

    hub.publish(f"{PREFIX}/spk-b/cmd", b'{"id": "emergency"}')
    assert b.received(f"{PREFIX}/spk-b/cmd", b'{"id": "emergency"}'), "speaker B no longer receives its commands"
    assert b.disconnects == []


def test_a_device_password_cannot_take_the_ingest_listeners_id(tmp_path: Path, production_broker, peers) -> None:
    pw = _credentials(tmp_path)
    broker = production_broker(tmp_path / "creds")
    log = logging.getLogger("test.mqtt")
    lid, listener = listener_client(_hub_settings(broker, pw["hub"]), f"{PREFIX}-listener", log)
    connects: list[Any] = []
    drops: list[Any] = []
    got: list[tuple[str, bytes]] = []
    listener.on_connect = lambda cl, ud, flags, rc, props: (connects.append(rc),
                                                            cl.subscribe(f"{PREFIX}/+/ack", qos=1))
    listener.on_disconnect = lambda *args: drops.append(args)
    listener.on_message = lambda cl, ud, msg: got.append((msg.topic, msg.payload))
    listener.connect("127.0.0.1", broker.hub_port, keepalive=30)
    listener.loop_start()
    try:
        assert wait_until(lambda: connects, timeout=20) and connects[0].value == CONNECTED
        time.sleep(0.5)  # the SUBACK
        thief = peers(lid.client_id, broker.device_port, "spk-a", pw["spk-a"], ca=broker.ca)
        assert thief.rc is not None
        time.sleep(1.0)
        assert drops == [], f"the ingest's listener was disconnected by a device's password: {broker.log()}"
        a = peers("spk-a", broker.device_port, "spk-a", pw["spk-a"], ca=broker.ca)
        assert a.rc == CONNECTED
        a.publish(f"{PREFIX}/spk-a/ack", b'{"id": "c1", "ok": true}')
        assert wait_until(lambda: (f"{PREFIX}/spk-a/ack", b'{"id": "c1", "ok": true}') in got, timeout=20)
    finally:
        listener.disconnect()
        listener.loop_stop()
        lid.release()


def test_the_hubs_own_processes_keep_distinct_ids(tmp_path: Path, production_broker, peers) -> None:
    """Two workers and two ingest listeners, all under the one hub account: none kicks another,
    and each keeps the client id it asked for (the listeners' persistent sessions depend on it)."""
    pw = _credentials(tmp_path)
    broker = production_broker(tmp_path / "creds")
    log = logging.getLogger("test.mqtt")
    clients: list[tuple[Any, list[Any], list[Any]]] = []
    lids = []
    try:
        for i in range(2):
            sender = make_client(_hub_settings(broker, pw["hub"], client_id=f"hub-worker-{i}"), log)
            lid, listener = listener_client(_hub_settings(broker, pw["hub"]), f"{PREFIX}-listener", log)
            lids.append(lid)
            for c in (sender, listener):
                ups: list[Any] = []
                downs: list[Any] = []
                c.on_connect = lambda cl, ud, flags, rc, props, ups=ups: ups.append(rc)
                c.on_disconnect = lambda *args, downs=downs: downs.append(args)
                c.connect("127.0.0.1", broker.hub_port, keepalive=30)
                c.loop_start()
                clients.append((c, ups, downs))
        assert len({lid.client_id for lid in lids}) == 2
        assert wait_until(lambda: all(ups for _, ups, _ in clients), timeout=20)
        assert all(ups[0].value == CONNECTED for _, ups, _ in clients)
        time.sleep(1.0)
        assert all(downs == [] for _, _, downs in clients), broker.log()
        ids = {c._client_id.decode() for c, _, _ in clients}
        assert ids == {"hub-worker-0", "hub-worker-1", *(lid.client_id for lid in lids)}
        log_text = broker.log()
        assert "already connected" not in log_text, log_text
        # a worker's command still reaches a device
        b = peers("spk-b", broker.device_port, "spk-b", pw["spk-b"], ca=broker.ca)
        assert b.rc == CONNECTED and b.subscribe(f"{PREFIX}/spk-b/cmd") == [1]
        clients[0][0].publish(f"{PREFIX}/spk-b/cmd", b'{"id": "w0"}', qos=1).wait_for_publish(15)
        assert b.received(f"{PREFIX}/spk-b/cmd", b'{"id": "w0"}')
    finally:
        for c, _, _ in clients:
            c.disconnect()
            c.loop_stop()
        for lid in lids:
            lid.release()


def test_the_shipped_config_binds_client_ids_on_the_devices_listener_only() -> None:
    listeners: dict[str, list[str]] = {}
    current = "global"
    for line in (Path(__file__).resolve().parents[2] / "deploy/mosquitto/production.conf").read_text().splitlines():
        if line.startswith("listener "):
            current = line
        if line and not line.startswith("#"):
            listeners.setdefault(current, []).append(line)
    assert "use_username_as_clientid true" in listeners["listener 8883"]
    assert "use_username_as_clientid true" not in listeners["listener 1883 127.0.0.1"]


@pytest.mark.parametrize("address", ["hub-1a2b3c4d5e6f", "hub-prof-x", "spk-listener-host-0", "ops-7"])
def test_an_address_that_could_be_a_hub_client_id_is_refused(address: str) -> None:
    with pytest.raises(mc.CredentialsError, match=f"device SPK-X: address '{address}' could be the client id"):
        mc.plan([("SPK-X", address, PREFIX)], "ops", [PREFIX], {})
    assert len(mc.plan([("SPK-X", "spk-x", PREFIX)], "ops", [PREFIX], {})) == 2
