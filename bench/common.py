"""Shared bench plumbing: our own Mosquitto, hub configs, databases, subprocesses, machine facts.

Everything here is bounded in time and cleans up what it starts (by pid, never by name)."""
from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from hub.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1/postgres")
PY = sys.executable


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.2f}] {msg}", flush=True)




def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port} after {timeout}s")


class Proc:
    """A subprocess in its own session, stopped with SIGTERM then SIGKILL (its group, by pid)."""

    def __init__(self, name: str, args: list[str], workdir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        self._fh = self.log.open("wb")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.p = subprocess.Popen(args, env=full_env, stdout=self._fh, stderr=subprocess.STDOUT, cwd=str(ROOT),
                                  start_new_session=True)

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.p.pid, sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        self._fh.close()


def wait_until(pred: Callable[[], Any], timeout: float, what: str, procs: list[Proc] = (), step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        for p in procs:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited early:\n{p.output()[-2000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


@contextlib.contextmanager
def mosquitto(workdir: Path) -> Iterator[int]:
    """Our own broker on a free loopback port (the shared one on 1883 is left alone)."""
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 0\nmax_inflight_messages 0\nset_tcp_nodelay true\n"  # as deploy/mosquitto ships
                    "log_type error\nlog_dest stderr\n")
    exe = os.environ.get("BENCH_MOSQUITTO", "/usr/sbin/mosquitto")
    p = Proc("mosquitto", [exe, "-c", str(conf)], workdir)
    try:
        wait_port(port)
        yield port
    finally:
        p.stop()


@contextlib.contextmanager
def workdir(tag: str) -> Iterator[Path]:
    keep = os.environ.get("BENCH_KEEP")
    d = Path(tempfile.mkdtemp(prefix=f"hub-bench-{tag}-"))
    try:
        yield d
    finally:
        if not keep:
            import shutil
            shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def postgres_db() -> Iterator[str | None]:
    """A temporary database on the local PostgreSQL, or None when it does not answer."""
    try:
        import psycopg
    except ImportError:
        yield None
        return
    raw = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    name = f"hub_bench_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(raw, connect_timeout=3, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001
        log(f"PostgreSQL not reachable ({type(exc).__name__}: {str(exc)[:120]}); skipping it")
        yield None
        return
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with contextlib.suppress(Exception), psycopg.connect(raw, connect_timeout=3, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def hub_config(workdir: Path, db_url: str, mqtt_port: int, prefix: str, **extra: Any) -> Path:
    cfg = {
        "database_url": db_url,
        "redis_url": REDIS_URL,
        "queue": f"hubbench-{uuid.uuid4().hex[:10]}",
        "retry_backoff_s": [0.5, 1.0],
        "sweep_interval_s": 1.0,
        "state_dir": str(workdir / "var"),
        "plugins": {"mqtt_speaker": {"host": "127.0.0.1", "port": mqtt_port, "topic_prefix": prefix}},
        **extra,
    }
    path = workdir / "hub.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def purge_queues(rt: Any) -> None:
    """The run's queues, jobs and rq registries (keys without expiry) off the shared Redis."""
    from hub.runtime import QUEUE_ORDER
    from hub.testing import purge_queues as purge
    purge(rt.redis, [rt.queue_name(p) for p in QUEUE_ORDER])


def make_runtime(config: Path) -> Any:
    from hub.config import load_settings
    from hub.plugins import Plugins
    from hub.runtime import Runtime
    plugins = Plugins()
    plugins.load_entry_points()
    rt = Runtime(load_settings({"HUB_CONFIG": str(config)}), plugins=plugins)
    rt.db.create()
    return rt


def load_areas(rt: Any) -> list[str]:
    """Province 80 and its communes (official list); returns the commune codes."""
    from hub.fleet.areas import import_areas, official_rows
    rows = official_rows(["80"])
    with rt.db.session() as s:
        import_areas(s, rows)
    return [r.code for r in rows if r.type == "commune"]


def insert_devices(rt: Any, n: int, communes: list[str], prefix: str = "b") -> list[tuple[str, str]]:
    """n speakers spread over the communes, bulk-inserted with SQLAlchemy core. Returns (id, address)."""
    from hub.store.db import utcnow
    from hub.store.models import Device
    from hub.fleet.registry import default_capabilities
    caps = sorted(default_capabilities(rt.plugins, "mqtt_speaker", "speaker"))
    now = utcnow()
    rows = [{"id": f"{prefix.upper()}-{i:06d}", "name": f"speaker {i}", "vendor": "mqtt_speaker", "model": "bench",
             "kind": "speaker", "area_code": communes[i % len(communes)], "address": f"{prefix}-{i:06d}",
             "capabilities": caps, "config": {}, "admin_state": "enabled", "created_at": now} for i in range(n)]
    with rt.db.engine.begin() as c:
        for i in range(0, n, 5000):
            c.execute(Device.__table__.insert(), rows[i:i + 5000])
    return [(r["id"], r["address"]) for r in rows]


def machine() -> dict[str, Any]:
    mem = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mosq = ""
    with contextlib.suppress(Exception):
        out = subprocess.run(["/usr/sbin/mosquitto", "-h"], capture_output=True, text=True, timeout=5).stdout
        mosq = out.splitlines()[0] if out else ""
    return {"cores": os.cpu_count(), "ram_mb": mem, "cpu": cpu, "python": platform.python_version(),
            "platform": platform.platform(), "mosquitto": mosq}


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.4999)) - 1))
    return s[k]


def dump(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
