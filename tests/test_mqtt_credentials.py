"""Device credentials and ACLs against a real Mosquitto of our own (never the shared one),
configured from deploy/mosquitto/production.conf with only paths and ports replaced."""
from __future__ import annotations

import csv
import getpass
import queue
import re
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.access import mqtt_credentials as mc
from hub.fleet.registry import upsert_device
from hub.runtime import Runtime
from tests.support.services import ROOT
from hub.ports import free_port

mqtt = pytest.importorskip("paho.mqtt.client")
MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
PREFIX = "hub/spk"
PRODUCTION = ROOT / "deploy/mosquitto/production.conf"
NOT_AUTHORIZED = 135  # paho 2 reports MQTT 3.1.1's CONNACK 5 with its MQTT 5 reason code




def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def make_certs(d: Path) -> dict[str, Path] | None:
    """A throw-away CA and a broker certificate for 127.0.0.1, or None without openssl."""
    if shutil.which("openssl") is None:
        return None
    run = lambda *a: subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True, timeout=60)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=hub-test-ca",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "broker.key", "-out", "broker.csr")
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
        "-extfile", "ext", "-out", "broker.pem")
    return {"cert": d / "broker.pem", "key": d / "broker.key", "ca": d / "ca.pem"}


def render(conf: str, creds: Path, work: Path, tls_port: int, local_port: int, certs: dict[str, Path] | None) -> str:
    """production.conf with its placeholders and paths pointed at the test's files."""
    out = []
    for line in conf.splitlines():
        key = line.split(" ", 1)[0]
        if line == "listener 8883":
            line = f"listener {tls_port} 127.0.0.1"
        elif line == "listener 1883 127.0.0.1":
            line = f"listener {local_port} 127.0.0.1"
        elif key in ("certfile", "keyfile", "cafile", "tls_version") and certs is None:
            continue
        elif key == "certfile":
            line = f"certfile {certs['cert']}"
        elif key == "keyfile":
            line = f"keyfile {certs['key']}"
        elif key == "cafile":
            line = f"cafile {certs['ca']}"
        elif key == "password_file":
            line = f"password_file {creds / 'passwd'}"
        elif key == "acl_file":
            line = f"acl_file {creds / 'acl'}"
        elif key == "persistence_location":
            line = f"persistence_location {work}/"
        elif key == "log_dest":
            line = f"log_dest file {work / 'mosquitto.log'}"
        out.append(line)
    assert "<" not in "\n".join(out), "a placeholder of production.conf was left unreplaced"
    # As root, Mosquitto drops to the `mosquitto` user, which cannot read the test's 0600 files.
    out.append(f"user {getpass.getuser()}")
    return "\n".join(out) + "\n"


class Broker:
    def __init__(self, conf: Path, ports: tuple[int, int], work: Path) -> None:
        self.work = work
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 15
        while not all(answers(p) for p in ports):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"mosquitto did not start: {self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        path = self.work / "mosquitto.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()


class Client:
    """A paho client that reports its CONNACK and queues what it receives."""

    def __init__(self, client_id: str, port: int, username: str | None = None, password: str | None = None,
                 ca: Path | None = None, timeout: float = 15) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connack: queue.Queue[int] = queue.Queue()
        self.subacks: queue.Queue[list[int]] = queue.Queue()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        if username is not None:
            c.username_pw_set(username, password)
        if ca is not None:
            c.tls_set(ca_certs=str(ca))
        c.on_connect = lambda cl, ud, flags, rc, props: self.connack.put(rc.value)
        c.on_message = lambda cl, ud, msg: self.messages.put((msg.topic, msg.payload))
        c.on_subscribe = lambda cl, ud, mid, rcs, props: self.subacks.put([r.value for r in rcs])
        c.reconnect_delay_set(30, 30)  # a refused client must not hammer the broker while the test looks
        self.c = c
        c.connect_async("127.0.0.1", port, keepalive=30)
        c.loop_start()
        try:
            self.rc: int | None = self.connack.get(timeout=timeout)
        except queue.Empty:
            self.rc = None

    def subscribe(self, *topics: str) -> list[int]:
        self.c.subscribe([(t, 1) for t in topics])
        return self.subacks.get(timeout=10)

    def publish(self, topic: str, payload: bytes) -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(10)

    def expect(self, topic: str, payload: bytes, timeout: float = 10) -> list[tuple[str, bytes]]:
        """Everything received up to and including (topic, payload)."""
        got, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.messages.get(timeout=0.2)
            except queue.Empty:
                continue
            got.append(msg)
            if msg == (topic, payload):
                return got
        raise AssertionError(f"{topic} {payload!r} not received; got {got}")

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def fleet(rt: Runtime, legacy_areas: None) -> Runtime:
    with rt.db.session() as s:
        for did, address, area, config in (("SPK-1", "spk-1", "27694", {}), ("SPK-2", "spk-2", "28099", {}),
                                           ("SPK-3", "spk-3", "27697", {"topic_prefix": "other/vendor"})):
            upsert_device(s, rt.plugins, {"id": did, "vendor": "mqtt_speaker", "kind": "speaker", "area_code": area,
                                          "address": address, "tags": [], "config": config})
    return rt


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return {row["username"]: row for row in csv.DictReader(fh)}


def test_files_modes_kept_passwords_and_rotation(fleet: Runtime, tmp_path: Path) -> None:
    out = tmp_path / "creds"
    with fleet.db.session() as s:
        accounts, used = mc.generate(s, fleet.settings, fleet.plugins, out, vendor="mqtt_speaker", prefix=PREFIX)
    assert used in ("mosquitto_passwd", "builtin") and len(accounts) == 4
    assert stat.S_IMODE((out / "credentials.csv").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "passwd").stat().st_mode) == 0o600
    rows = read_csv(out / "credentials.csv")
    assert set(rows) == {"hub", "spk-1", "spk-2", "spk-3"} and rows["spk-3"]["topic_prefix"] == "other/vendor"
    passwd = (out / "passwd").read_text()
    for row in rows.values():
        assert row["password"] not in passwd and len(row["password"]) >= 22
        assert re.search(rf"^{re.escape(row['username'])}:\$7\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$", passwd, re.M)
    acl = (out / "acl").read_text()
    assert "topic read other/vendor/+/ack" in acl and "topic read other/vendor/spk-3/cmd" in acl
    assert "pattern" not in acl.replace("No pattern lines", "")

    with fleet.db.session() as s:  # a re-run keeps every password; --rotate changes them all
        mc.generate(s, fleet.settings, fleet.plugins, out, vendor="mqtt_speaker", prefix=PREFIX)
        assert {u: r["password"] for u, r in read_csv(out / "credentials.csv").items()} == \
               {u: r["password"] for u, r in rows.items()}
        mc.generate(s, fleet.settings, fleet.plugins, out, vendor="mqtt_speaker", prefix=PREFIX, rotate=True)
    rotated = read_csv(out / "credentials.csv")
    assert all(rotated[u]["password"] != rows[u]["password"] for u in rows)

    with pytest.raises(mc.CredentialsError, match="wildcards"):
        with fleet.db.session() as s:
            mc.generate(s, fleet.settings, fleet.plugins, out, vendor="mqtt_speaker", prefix="hub/#")
    with pytest.raises(mc.CredentialsError, match="hub user"):
        mc.plan([("X", "a", PREFIX)], "bad/user", [PREFIX], {})


def test_builtin_hash_is_mosquittos_format() -> None:
    h = mc.mosquitto_hash("secret-pass", salt=b"\x00" * 12, iterations=101)
    assert h.startswith("$7$101$AAAAAAAAAAAAAAAA$") and len(h.rsplit("$", 1)[1]) == 88


@pytest.fixture
def broker_for(fleet: Runtime, tmp_path: Path) -> Iterator:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed")
    started: list[Broker] = []

    def start(hasher: str) -> tuple[dict[str, dict[str, str]], int, int, Path | None]:
        if hasher == "mosquitto_passwd" and shutil.which("mosquitto_passwd") is None:
            pytest.skip("mosquitto_passwd is not installed")
        work = tmp_path / hasher
        work.mkdir()
        creds = work / "creds"
        with fleet.db.session() as s:
            _, used = mc.generate(s, fleet.settings, fleet.plugins, creds, vendor="mqtt_speaker", prefix=PREFIX,
                                  hasher=hasher)
        assert used == hasher
        certs = make_certs(work)
        tls_port, local_port = free_port(), free_port()
        conf = work / "mosquitto.conf"
        conf.write_text(render(PRODUCTION.read_text(), creds, work, tls_port, local_port, certs))
        started.append(Broker(conf, (tls_port, local_port), work))
        return read_csv(creds / "credentials.csv"), tls_port, local_port, certs["ca"] if certs else None

    yield start
    for b in started:
        b.stop()


@pytest.mark.parametrize("hasher", ["mosquitto_passwd", "builtin"])
def test_devices_are_confined_to_their_own_topics(broker_for, hasher: str) -> None:  # noqa: ANN001
    creds, tls_port, local_port, ca = broker_for(hasher)
    clients: list[Client] = []

    def client(*args, **kwargs) -> Client:  # noqa: ANN002, ANN003
        c = Client(*args, **kwargs)
        clients.append(c)
        return c

    try:
        assert client("anon-1", tls_port, ca=ca).rc == NOT_AUTHORIZED
        assert client("spk-1", tls_port, "spk-1", "not-the-password", ca=ca).rc == NOT_AUTHORIZED
        assert client("spk-1", tls_port, "spk-1", creds["spk-2"]["password"], ca=ca).rc == NOT_AUTHORIZED
        assert client("anon-2", local_port).rc == NOT_AUTHORIZED  # loopback is no exception
        if ca is not None:  # the device listener speaks TLS only: no CONNACK in plain text
            assert client("spk-1-plain", tls_port, "spk-1", creds["spk-1"]["password"], timeout=3).rc is None

        hub = client("hub-ingest", local_port, "hub", creds["hub"]["password"])
        assert hub.rc == 0
        assert hub.subscribe(f"{PREFIX}/+/status", f"{PREFIX}/+/ack", f"{PREFIX}/+/online") == [1, 1, 1]
        dev1 = client("spk-1", tls_port, "spk-1", creds["spk-1"]["password"], ca=ca)
        dev2 = client("spk-2", tls_port, "spk-2", creds["spk-2"]["password"], ca=ca)
        assert dev1.rc == 0 and dev2.rc == 0

        # its own status and ack reach the hub; a status in another device's name does not
        dev1.publish(f"{PREFIX}/spk-1/status", b'{"volume": 40}')
        dev1.publish(f"{PREFIX}/spk-2/status", b'{"forged": true}')
        dev1.publish(f"{PREFIX}/spk-2/ack", b'{"forged": true}')
        dev1.publish(f"{PREFIX}/spk-1/ack", b'{"id": "c1", "ok": true}')
        got = hub.expect(f"{PREFIX}/spk-1/ack", b'{"id": "c1", "ok": true}')
        assert (f"{PREFIX}/spk-1/status", b'{"volume": 40}') in got
        assert not any(topic.startswith(f"{PREFIX}/spk-2/") for topic, _ in got), got

        # it reads its own commands, never another's
        dev1.subscribe(f"{PREFIX}/spk-2/cmd", f"{PREFIX}/spk-1/cmd", f"{PREFIX}/+/status")
        dev2.subscribe(f"{PREFIX}/spk-2/cmd")
        hub.publish(f"{PREFIX}/spk-2/cmd", b'{"id": "for-2"}')
        dev2.publish(f"{PREFIX}/spk-2/status", b'{"volume": 10}')
        hub.publish(f"{PREFIX}/spk-1/cmd", b'{"id": "for-1"}')
        got = dev1.expect(f"{PREFIX}/spk-1/cmd", b'{"id": "for-1"}')
        assert got == [(f"{PREFIX}/spk-1/cmd", b'{"id": "for-1"}')], got
        assert dev2.expect(f"{PREFIX}/spk-2/cmd", b'{"id": "for-2"}')
        # and it cannot command another device, nor itself
        dev1.publish(f"{PREFIX}/spk-2/cmd", b'{"id": "forged"}')
        hub.publish(f"{PREFIX}/spk-2/cmd", b'{"id": "after"}')
        assert dev2.expect(f"{PREFIX}/spk-2/cmd", b'{"id": "after"}') == [(f"{PREFIX}/spk-2/cmd", b'{"id": "after"}')]
    finally:
        for c in clients:
            c.close()


def test_the_cli_writes_the_files(fleet: Runtime, config_file: Path, tmp_path: Path) -> None:
    from tests.support.cli import hub

    r = hub(config_file, "mqtt", "credentials", "--out", str(tmp_path / "c"), "--prefix", PREFIX)
    assert r.returncode == 0 and "3 device accounts" in r.stdout, r.stderr
    assert stat.S_IMODE((tmp_path / "c" / "credentials.csv").stat().st_mode) == 0o600
    for row in read_csv(tmp_path / "c" / "credentials.csv").values():
        assert row["password"] not in r.stdout


def test_production_conf_is_strict() -> None:
    conf = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in PRODUCTION.read_text().splitlines()
            if line and not line.startswith("#") and " " in line}
    assert conf["allow_anonymous"] == "false" and conf["per_listener_settings"] == "false"
    assert int(conf["max_queued_messages"]) >= 100_000 and "password_file" in conf and "acl_file" in conf
    assert "certfile" in conf and "keyfile" in conf


def test_dev_conf_stays_loopback_only() -> None:
    dev = (ROOT / "deploy/mosquitto/dev.conf").read_text()
    assert "listener @PORT@ 127.0.0.1" in dev  # anonymous is only ever on loopback
