"""Fault-injection fixtures: every scenario runs its OWN redis-server and mosquitto on free
loopback ports (the shared ones on 6379/1883 are never touched), restarts or pauses them as
the scenario needs, and kills them in teardown. tests/faults/conftest.py offers the fixtures to
the fault tests; other modules (the drill, the delivery-truth tests) import what they use."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from hub.config import Settings, load_settings
from hub.delivery.dispatch import counts
from hub.store.models import Delivery, DeviceStatus
from hub.plugins import Plugins
from hub.runtime import Runtime
from tests.support.processes import Proc, wait_until
from hub.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
DEV_CONF = ROOT / "deploy" / "mosquitto" / "dev.conf"
DATA = ROOT / "tests" / "data"
TERMINAL = ("acked", "failed", "expired", "unsupported", "superseded")




def _wait_port(port: int, timeout: float, up: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} not {'up' if up else 'down'} after {timeout}s")


class Server:
    """A server subprocess on a fixed loopback port that can be stopped, restarted, paused."""

    def __init__(self, name: str, port: int, log_dir: Path) -> None:
        self.name, self.port, self.log_dir = name, port, log_dir
        self.p: subprocess.Popen | None = None
        self.starts = 0

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.starts += 1
        log = (self.log_dir / f"{self.name}-{self.starts}.log").open("wb")
        self.p = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        _wait_port(self.port, 10)

    def stop(self, kill: bool = False) -> None:
        p, self.p = self.p, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGCONT)  # a paused server must be able to exit
        p.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        _wait_port(self.port, 10, up=False)

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def pause(self) -> None:
        assert self.p is not None
        self.p.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.p is not None
        self.p.send_signal(signal.SIGCONT)


class RedisServer(Server):
    def argv(self) -> list[str]:
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no"]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class Mosquitto(Server):
    """`shipped=True`: the repository's deploy/mosquitto/dev.conf (queue limits lifted);
    False: Mosquitto's defaults (1,000 queued and 20 in-flight messages per client)."""

    def __init__(self, name: str, port: int, log_dir: Path, shipped: bool = True) -> None:
        super().__init__(name, port, log_dir)
        if shipped:
            text = DEV_CONF.read_text(encoding="utf-8").replace("@PORT@", str(port))
        else:
            text = f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        self.conf = log_dir / f"{name}.conf"
        self.conf.write_text(text, encoding="utf-8")

    def argv(self) -> list[str]:
        return ["mosquitto", "-c", str(self.conf)]


def _need(binary: str) -> None:
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed")


@pytest.fixture
def own_redis(tmp_path):
    _need("redis-server")
    srv = RedisServer("redis", free_port(), tmp_path)
    srv.start()
    yield srv
    srv.stop(kill=True)


@pytest.fixture
def own_broker(tmp_path):
    _need("mosquitto")
    srv = Mosquitto("mosquitto", free_port(), tmp_path)
    srv.start()
    yield srv
    srv.stop(kill=True)


def write_config(tmp_path: Path, redis_url: str, broker_port: int, prefix: str, **extra: Any) -> Path:
    cfg = {
        "database_url": f"sqlite:///{tmp_path / 'hub.sqlite3'}",
        "redis_url": redis_url,
        "queue": f"fault-{uuid.uuid4().hex[:8]}",
        "retry_backoff_s": [0.5, 1.0, 2.0, 3.0],
        "sweep_interval_s": 0.2,
        "requeue_after_s": 3,
        "state_dir": str(tmp_path / "var"),
        "plugins": {"mqtt_speaker": {"host": "127.0.0.1", "port": broker_port, "topic_prefix": prefix,
                                     "publish_timeout_s": 5.0, "connect_timeout_s": 2.0}},
    }
    cfg.update(extra)
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


class FaultHub:
    """Database, config, simulated fleet and hub processes of one scenario, on its own servers."""

    def __init__(self, tmp_path: Path, redis: RedisServer, broker: Mosquitto, **extra: Any) -> None:
        self.tmp = tmp_path
        self.redis, self.broker = redis, broker
        self.prefix = f"fault/{uuid.uuid4().hex[:8]}"
        self.config = write_config(tmp_path, redis.url, broker.port, self.prefix, **extra)
        self.settings: Settings = load_settings({"HUB_CONFIG": str(self.config)})
        plugins = Plugins()
        plugins.load_entry_points()
        self.rt = Runtime(self.settings, plugins=plugins)
        self.rt.db.create()
        self.procs: dict[str, Proc] = {}
        self.fleet: Any = None
        self._nproc = Counter()

    # -- devices -------------------------------------------------------------------------------
    def register(self, n: int, commune: str = "27694") -> list[str]:
        from hub.fleet.registry import import_area_file, upsert_device

        addresses = [f"spk-{i:05d}" for i in range(n)]
        with self.rt.db.session() as s:
            import_area_file(s, DATA / "legacy-three-level.yaml")
            for a in addresses:
                upsert_device(s, self.rt.plugins, {"id": a.upper(), "vendor": "mqtt_speaker", "kind": "speaker",
                                                   "area_code": commune, "address": a, "tags": []})
        return addresses

    def start_fleet(self, addresses: list[str], **faults: Any) -> Any:
        from hub_mqtt_speaker.device import SimDevice
        from hub_mqtt_speaker.simulator import Fleet

        self.fleet = Fleet("127.0.0.1", self.broker.port, self.prefix,
                           [SimDevice(a, **faults) for a in addresses], status_interval=30.0)
        self.fleet.start(timeout=60)
        return self.fleet

    # -- hub processes -------------------------------------------------------------------------
    def start(self, kind: str) -> Proc:
        self._nproc[kind] += 1
        name = f"{kind}-{self._nproc[kind]}"
        args = [kind] + (["--name", f"{name}-{uuid.uuid4().hex[:6]}"] if kind == "worker" else [])
        self.procs[name] = Proc(name, args, self.config, self.tmp)
        return self.procs[name]

    def kill9(self, name: str) -> None:
        p = self.procs[name]
        os.killpg(p.p.pid, signal.SIGKILL)
        p.p.wait(10)

    def live(self) -> list[Proc]:
        return [p for p in self.procs.values() if p.alive()]

    def wait_online(self, n: int, timeout: float = 60) -> None:
        def online() -> bool:
            with self.rt.db.session() as s:
                return len(s.scalars(select(DeviceStatus.device_id)
                                     .where(DeviceStatus.online.is_(True))).all()) >= n
        wait_until(online, timeout, f"{n} devices online", self.live())

    # -- outcome -------------------------------------------------------------------------------
    def counts(self, command_id: str) -> dict[str, int]:
        with self.rt.db.session() as s:
            return counts(s, command_id)

    def wait_terminal(self, command_id: str, timeout: float) -> dict[str, Delivery]:
        def done() -> bool:
            c = self.counts(command_id)
            return c["queued"] + c["sent"] == 0
        wait_until(done, timeout, f"command {command_id} to finish", self.live())
        with self.rt.db.session() as s:
            return {d.device_id: d for d in s.scalars(select(Delivery).where(Delivery.command_id == command_id))}

    def received(self, command_id: str) -> dict[str, int]:
        """Per device address: how many copies of the command it received."""
        return {st.address: sum(1 for c in st.commands if c.id == command_id) for st in self.fleet.devices()}

    def figures(self, scenario: str, command_id: str, rows: dict[str, Delivery], **more: Any) -> dict[str, Any]:
        states = Counter(d.state for d in rows.values())
        got = self.received(command_id)
        fig = {"deliveries": len(rows), "sent(still)": states.get("sent", 0), "acked": states.get("acked", 0),
               "failed": states.get("failed", 0), "expired": states.get("expired", 0),
               "queued(still)": states.get("queued", 0),
               "devices_received": sum(1 for n in got.values() if n),
               "duplicates": sum(n - 1 for n in got.values() if n > 1),
               "devices_with_duplicates": sum(1 for n in got.values() if n > 1),
               "attempts_max": max((d.attempts for d in rows.values()), default=0)}
        fig.update(more)
        print(f"\n[{scenario}] " + ", ".join(f"{k}={v}" for k, v in fig.items()))
        return fig

    def check_consistent(self, command_id: str, rows: dict[str, Delivery]) -> None:
        """Every row terminal exactly once; an acked row means the device really got it."""
        assert all(d.state in TERMINAL for d in rows.values()), Counter(d.state for d in rows.values())
        got = self.received(command_id)
        for d in rows.values():
            if d.state == "acked":
                assert got[d.device_id.lower()] >= 1, d.device_id
            # a device acts once however many copies arrive (QoS 1 redelivery, resend after a crash)
            acted = [c for c in self.fleet.device(d.device_id.lower()).commands
                     if c.id == command_id and not c.duplicate]
            assert len(acted) <= 1, d.device_id

    def close(self) -> None:
        for p in self.procs.values():
            p.stop()
        if self.fleet is not None:
            self.fleet.stop(timeout=5)
        self.rt.close()


@pytest.fixture
def fault_hub(tmp_path, own_redis, own_broker):
    pytest.importorskip("hub_mqtt_speaker")
    hubs: list[FaultHub] = []

    def make(**extra: Any) -> FaultHub:
        h = FaultHub(tmp_path, own_redis, own_broker, **extra)
        hubs.append(h)
        return h

    yield make
    for h in hubs:
        h.close()


def dump_logs(h: FaultHub) -> str:
    return "\n".join(f"--- {n}\n{p.output()[-2500:]}" for n, p in h.procs.items())
