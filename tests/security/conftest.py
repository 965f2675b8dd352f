"""Shared by the security tests.

- A province with devices in two districts (tests/support/province.py has the accounts that
  probe it).
- A private Mosquitto configured from the shipped deploy/mosquitto/production.conf (only paths,
  ports and certificates replaced), never the shared broker.
"""
from __future__ import annotations

import getpass
import os
import queue
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.access import accounts
from hub.access.actors import LOCAL_ADMIN
from hub.fleet.registry import upsert_group
from hub.runtime import Runtime
from tests.support.cli import hub_cli
from tests.support.province import FAR, OWN, add_device
from tests.support.services import ROOT
from hub.ports import free_port


@pytest.fixture
def province(rt: Runtime, legacy_areas: None) -> Runtime:
    """spk-own and led-own in commune 27694, spk-far in 28099 (another district), the group
    g-mixed holding spk-own and spk-far, and an operator op-far of 28099."""
    add_device(rt, "spk-own", OWN)
    add_device(rt, "led-own", OWN, kind="led_board")
    add_device(rt, "spk-far", FAR, address="line-0042")
    with rt.db.session() as s:
        upsert_group(s, {"id": "g-mixed", "name": "Chợ liên xã", "area_code": None, "devices": ["spk-own", "spk-far"]})
        accounts.create_user(s, LOCAL_ADMIN, "op-far", ["operator"], [FAR], login=False)
    return rt


@pytest.fixture
def cli_ready(config_file: Path) -> Path:
    """A database made and the legacy areas imported through the real CLI."""
    assert hub_cli(config_file, "init-db").returncode == 0
    r = hub_cli(config_file, "import", "areas", str(ROOT / "tests/data/legacy-three-level.yaml"))
    assert r.returncode == 0, r.stderr
    return config_file


# The production broker
PRODUCTION = ROOT / "deploy/mosquitto/production.conf"
MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)




def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _certs(d: Path) -> dict[str, Path]:
    """A throw-away CA and a broker certificate for 127.0.0.1."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=hub-sec-test-ca",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "broker.key", "-out", "broker.csr")
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
        "-extfile", "ext", "-out", "broker.pem")
    return {"cert": d / "broker.pem", "key": d / "broker.key", "ca": d / "ca.pem"}


def render_production(creds: Path, work: Path, device_port: int, hub_port: int, certs: dict[str, Path]) -> str:
    """production.conf with its placeholders, ports and paths pointed at the test's own."""
    out = []
    for line in PRODUCTION.read_text().splitlines():
        key = line.split(" ", 1)[0]
        replaced = {"certfile": f"certfile {certs['cert']}", "keyfile": f"keyfile {certs['key']}",
                    "cafile": f"cafile {certs['ca']}", "password_file": f"password_file {creds / 'passwd'}",
                    "acl_file": f"acl_file {creds / 'acl'}", "persistence_location": f"persistence_location {work}/",
                    "log_dest": f"log_dest file {work / 'mosquitto.log'}"}
        if line == "listener 8883":
            line = f"listener {device_port} 127.0.0.1"
        elif line == "listener 1883 127.0.0.1":
            line = f"listener {hub_port} 127.0.0.1"
        elif key in replaced:
            line = replaced[key]
        out.append(line)
    text = "\n".join(out)
    assert "<" not in text, "a placeholder of production.conf was left unreplaced"
    # As root, Mosquitto drops to the `mosquitto` user, which cannot read the test's 0600 files.
    return text + f"\nuser {getpass.getuser()}\n"


class ProductionBroker:
    """Mosquitto on two free loopback ports: `device_port` (TLS, production's 8883) and
    `hub_port` (production's loopback listener for the hub's own processes)."""

    def __init__(self, creds: Path, work: Path) -> None:
        self.work, self.ca = work, None
        certs = _certs(work)
        self.ca = certs["ca"]
        self.device_port, self.hub_port = free_port(), free_port()
        conf = work / "mosquitto.conf"
        conf.write_text(render_production(creds, work, self.device_port, self.hub_port, certs))
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while not (_answers(self.device_port) and _answers(self.hub_port)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"mosquitto did not start: {self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        path = self.work / "mosquitto.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Peer:
    """A paho client that records its CONNACKs, its disconnections and what it receives."""

    def __init__(self, client_id: str, port: int, username: str, password: str, *, ca: Path | None = None,
                 clean_session: bool = True, timeout: float = 20) -> None:
        import paho.mqtt.client as mqtt

        self.connacks: queue.Queue[int] = queue.Queue()
        self.disconnects: list[Any] = []
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._subacks: queue.Queue[list[int]] = queue.Queue()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                        clean_session=clean_session)
        c.username_pw_set(username, password)
        if ca is not None:
            c.tls_set(ca_certs=str(ca))
        c.on_connect = lambda cl, ud, flags, rc, props: self.connacks.put(rc.value)
        c.on_disconnect = lambda cl, ud, flags, rc, props: self.disconnects.append(rc)
        c.on_message = lambda cl, ud, msg: self.messages.put((msg.topic, msg.payload))
        c.on_subscribe = lambda cl, ud, mid, rcs, props: self._subacks.put([r.value for r in rcs])
        c.reconnect_delay_set(30, 30)  # a kicked client must stay visibly kicked while the test looks
        self.c = c
        c.connect_async("127.0.0.1", port, keepalive=30)
        c.loop_start()
        try:
            self.rc: int | None = self.connacks.get(timeout=timeout)
        except queue.Empty:
            self.rc = None

    def subscribe(self, *topics: str) -> list[int]:
        self.c.subscribe([(t, 1) for t in topics])
        return self._subacks.get(timeout=15)

    def publish(self, topic: str, payload: bytes) -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(15)

    def received(self, topic: str, payload: bytes, timeout: float = 15) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.messages.get(timeout=0.2) == (topic, payload):
                    return True
            except queue.Empty:
                continue
        return False

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def production_broker(tmp_path: Path) -> Iterator[Any]:
    """start(creds_dir) → a ProductionBroker using the passwd and acl in creds_dir."""
    if MOSQUITTO is None or shutil.which("openssl") is None:
        pytest.skip("mosquitto and openssl are needed for a production-like broker")
    started: list[ProductionBroker] = []

    def start(creds: Path) -> ProductionBroker:
        work = tmp_path / f"broker-{len(started)}"
        work.mkdir()
        started.append(ProductionBroker(creds, work))
        return started[-1]

    yield start
    for b in started:
        b.stop()


@pytest.fixture
def peers() -> Iterator[Any]:
    """peer(...) → a connected Peer, closed at the end of the test."""
    made: list[Peer] = []

    def peer(*args: Any, **kwargs: Any) -> Peer:
        made.append(Peer(*args, **kwargs))
        return made[-1]

    yield peer
    for p in made:
        p.close()
