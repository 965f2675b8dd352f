"""The hub warns when the broker loses the listener's persistent session (delivery finding 7):
a Mosquitto without persistence — or one that cannot write it — forgets the ingest's session on
a restart, and with it every ack queued for the ingest, with nothing in the hub's logs to say
so. Each test runs its own Mosquitto on a free loopback port and restarts it."""
from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from hub.mqtt import LOST_SESSION
from hub.testing import RecordingSink
from tests.support.processes import wait_until

from tests.support.fault_services import ROOT, Mosquitto, Server, _need, free_port
from tests.faults.drill import DrillMosquitto

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]
WARNED = LOST_SESSION.split(" %s")[0]  # "MQTT broker"


def _listen_across_restart(broker, caplog) -> list[logging.LogRecord]:
    adapter_mod = pytest.importorskip("hub_mqtt_speaker.adapter")
    adapter = adapter_mod.MqttSpeakerAdapter({"host": "127.0.0.1", "port": broker.port, "connect_timeout_s": 2,
                                              "topic_prefix": f"hubtest/{uuid.uuid4().hex[:8]}"})
    caplog.set_level(logging.INFO, logger="hub.mqtt")
    try:
        adapter.listen(RecordingSink())
        assert adapter.wait_subscribed(10)
        client = adapter._listener
        assert client.watch.had_session
        broker.restart(down_s=0.5)
        # paho reconnects within 1-2 s; the watch hears the second CONNACK before the adapter does
        wait_until(lambda: client.watch.connects >= 2, 30, "the listener to reconnect")
        return [r for r in caplog.records if r.name == "hub.mqtt" and r.levelno == logging.WARNING
                and r.getMessage().startswith(WARNED)]
    finally:
        adapter.close()


def test_warns_when_a_broker_without_persistence_restarts(tmp_path, caplog) -> None:
    _need("mosquitto")
    broker = Mosquitto("mosquitto-nopersist", free_port(), tmp_path, shipped=False)  # persistence false
    broker.start()
    try:
        warned = _listen_across_restart(broker, caplog)
    finally:
        broker.stop(kill=True)
    assert len(warned) == 1, [r.getMessage() for r in caplog.records]
    msg = warned[0].getMessage()
    assert f"127.0.0.1:{broker.port}" in msg and "persistence_location" in msg and "Permission denied" in msg


def test_no_warning_when_the_broker_keeps_the_session(tmp_path, caplog) -> None:
    _need("mosquitto")
    broker = DrillMosquitto("mosquitto-persist", free_port(), tmp_path)  # persistence as production.conf
    broker.start()
    try:
        warned = _listen_across_restart(broker, caplog)
    finally:
        broker.stop(kill=True)
    assert warned == []


class ConfMosquitto(Server):
    """Mosquitto with a configuration given as text (no `user` option: started as root, it runs
    as `mosquitto`, as a packaged broker does)."""

    def __init__(self, name: str, port: int, log_dir: Path, extra: str) -> None:
        super().__init__(name, port, log_dir)
        self.conf = log_dir / f"{name}.conf"
        self.conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{extra}", encoding="utf-8")

    def argv(self) -> list[str]:
        return ["mosquitto", "-c", str(self.conf)]


def _as_packaged_root() -> None:
    _need("mosquitto")
    if os.geteuid() != 0:
        pytest.skip("Mosquitto switches to user `mosquitto` only when started as root")
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.skip("no user `mosquitto` on this machine")


def test_warns_when_a_root_started_broker_cannot_write_its_persistence(tmp_path, caplog) -> None:
    """The trap of finding 7: persistence on, but its folder closed to the user Mosquitto runs
    as. The broker starts and serves; only its log says "Permission denied" at each save."""
    _as_packaged_root()
    store = tmp_path / "store"  # under pytest's 0700 root-owned folder: closed to `mosquitto`
    store.mkdir()
    broker = ConfMosquitto("mosquitto-closed", free_port(), tmp_path,
                           f"persistence true\npersistence_location {store}/\nlog_dest stdout\n")
    broker.start()
    try:
        warned = _listen_across_restart(broker, caplog)
    finally:
        broker.stop(kill=True)
    assert len(warned) == 1, [r.getMessage() for r in caplog.records]
    assert "Permission denied" in (tmp_path / "mosquitto-closed-1.log").read_text(errors="replace")


def test_persistence_dir_script_lets_a_root_started_broker_keep_sessions(tmp_path, caplog) -> None:
    """deploy/mosquitto/persistence-dir.sh creates the folder owned by the broker's user; the
    same root-started broker then keeps the listener's session across its restart."""
    _as_packaged_root()
    base = Path(tempfile.mkdtemp(prefix="hub-mosq-persist-"))
    try:
        base.chmod(0o755)  # like /var/lib: open to traverse
        store = base / "mosquitto"
        port = free_port()
        extra = f"persistence true\npersistence_location {store}/\n"
        broker = ConfMosquitto("mosquitto-prepared", port, tmp_path, extra)
        done = subprocess.run([str(ROOT / "deploy" / "mosquitto" / "persistence-dir.sh"), str(broker.conf)],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert pwd.getpwuid(store.stat().st_uid).pw_name == "mosquitto"
        broker.start()
        try:
            warned = _listen_across_restart(broker, caplog)
        finally:
            broker.stop(kill=True)
        assert warned == []
        assert any(store.iterdir()), "the broker saved nothing"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _listener(port: int, base: str):
    from hub.mqtt import listener_client

    settings = {"host": "127.0.0.1", "port": port, "client_id": None, "username": None, "password": None,
                "tls": False, "ca_file": None, "max_inflight": 100, "connect_timeout_s": 2, "keepalive_s": 30}
    lid, client = listener_client(settings, base, logging.getLogger("hubtest.paho"))
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    wait_until(lambda: client.watch.connects >= 1, 10, "the listener's CONNACK")
    return lid, client


def test_warns_when_a_restarted_listener_finds_its_session_gone(tmp_path, caplog) -> None:
    """The ingest killed, the broker restarted without persistence meanwhile: the new ingest
    (same host, so the same listener id) finds no session on its first connection and says so.
    An ingest that stopped on purpose ended its session: its successor expects none."""
    _need("mosquitto")
    broker = Mosquitto("mosquitto-nopersist", free_port(), tmp_path, shipped=False)
    broker.start()
    base = f"hubtest-{uuid.uuid4().hex[:8]}-listener"
    caplog.set_level(logging.INFO, logger="hub.mqtt")
    try:
        lid, client = _listener(broker.port, base)
        client.disconnect()  # MQTT 3.1.1 keeps a persistent session across DISCONNECT
        client.loop_stop()
        os.close(lid._fd)  # the process dies: the kernel drops its lock, the slot's file stays
        broker.restart(down_s=0.5)
        lid2, client2 = _listener(broker.port, base)
        assert lid2.client_id == lid.client_id and lid2.had_session
        client2.disconnect()
        client2.loop_stop()
        lid2.release()  # stopped on purpose
        lid3, client3 = _listener(broker.port, base)
        assert lid3.client_id == lid.client_id and not lid3.had_session
        client3.disconnect()
        client3.loop_stop()
        lid3.release()
    finally:
        broker.stop(kill=True)
    warned = [r for r in caplog.records if r.name == "hub.mqtt" and r.getMessage().startswith(WARNED)]
    assert len(warned) == 1, [r.getMessage() for r in caplog.records]
    assert lid.client_id in warned[0].getMessage()
