"""The fault drill's machinery: an operator's bad day, played on real processes, then every
delivery row's final state compared with what each simulated device actually received and did.

Used by tests/faults/test_fault_drill.py (a few hundred devices, one scenario per test) and by
bench/faults.py (the same scenarios, larger). Everything runs on servers of its own: a
redis-server and a Mosquitto configured like deploy/mosquitto/production.conf (persistence on,
queue limits raised, TCP_NODELAY) but on a free loopback port without authentication, so the
drill can restart it; PostgreSQL (a throw-away database) when one answers, else SQLite.

The fleet is the mqtt_speaker plugin's own simulator (`hub_mqtt_speaker.simulator.Fleet`): it is
the reference of the wire protocol, gives every device its own MQTT connection (own client id,
own last will), and records per device every command it received, what it answered and whether
it was a repeat of an id it already had (answered again, not acted on again). The drill's
ledger (`Ledger`) reads those records. A repeated id of a command the device had played is a
`repeat`: the hub sends again what it cannot know was done (an ack lost with the broker), and a
device must answer it without acting twice (conformance ACK-03), so repeats are counted, not
refused. A device that acted on two copies (`played_twice`) is a failure.

The hub runs as it does in production: `hub ingest` and two `hub worker` subprocesses with the
default sweeper, requeue and retry settings; only the batch size is small, so that one fan-out
is several jobs shared by both workers and a fault can land in the middle of it.
"""
from __future__ import annotations

import contextlib
import os
import pwd
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from hub.access.actors import LOCAL_ADMIN
from hub.config import load_settings
from hub.store.db import utcnow
from hub.delivery.dispatch import submit
from hub.store.models import TERMINAL_STATES, Command, Content, Delivery, DeviceStatus
from hub.plugins import Plugins
from hub.runtime import Runtime
from hub.schemas import CommandSchema
from tests.support.fault_services import RedisServer, Server, free_port
from tests.support.processes import Proc, wait_until

ROOT = Path(__file__).resolve().parents[2]
AREAS = ROOT / "tests" / "data" / "legacy-three-level.yaml"
COMMUNE = "27694"
PG_ADMIN_URL = os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
# Short, so that a row the hub never resolves shows as `expired` within the drill; long enough
# for the recoveries the hub promises (a killed worker's jobs within 25 s).
TTL_S = float(os.environ.get("HUB_DRILL_TTL_S", "40"))
DEVICES = int(os.environ.get("HUB_DRILL_DEVICES", "300"))
# The expiry sweep runs every sweep_interval_s (1 s by default): a row may end that much after
# expires_at, plus a loaded machine's scheduling.
TERMINAL_SLACK_S = 3.0
NOT_LANDED = "the fault did not land mid fan-out"
SCENARIOS = ("worker_kill", "ingest_kill", "broker_restart", "supersede_restart")


class DrillMosquitto(Server):
    """Mosquitto as deploy/mosquitto/production.conf sets it up, minus TLS and passwords, on a
    loopback port of its own, persisting to a folder of its own (so a restart keeps sessions)."""

    def __init__(self, name: str, port: int, log_dir: Path) -> None:
        super().__init__(name, port, log_dir)
        store = log_dir / f"{name}-data"
        store.mkdir(exist_ok=True)
        self.conf = log_dir / f"{name}.conf"
        self.conf.write_text("\n".join([
            # Started as root, Mosquitto would switch to user `mosquitto`, which cannot write in a
            # test's private folder: persistence would then fail at each save ("Permission
            # denied") and every session be lost across the restart the drill is about.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {store}/",
            "autosave_interval 60",
            "persistent_client_expiration 7d",
            "max_queued_messages 200000",
            "max_queued_bytes 0",
            "max_inflight_messages 1000",
            "set_tcp_nodelay true",
            "allow_zero_length_clientid false",
            "max_packet_size 262144",
            "log_dest stdout",
            "log_type error", "log_type warning", "log_type notice",
            "connection_messages false", ""]), encoding="utf-8")

    def argv(self) -> list[str]:
        return ["mosquitto", "-c", str(self.conf)]


@contextlib.contextmanager
def database(workdir: Path) -> Iterator[tuple[str, str]]:
    """(url, label): a throw-away PostgreSQL database when a server answers, else SQLite."""
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with admin.connect() as c:
            c.execute(text("select 1"))
    except Exception as exc:  # no server, no driver, refused: the drill runs on SQLite and says so
        print(f"\n[drill] no PostgreSQL at {make_url(PG_ADMIN_URL).render_as_string(hide_password=True)} "
              f"({type(exc).__name__}): SQLite")
        yield f"sqlite:///{workdir / 'drill.sqlite3'}", "sqlite"
        return
    name = f"hubdrill_{uuid.uuid4().hex[:12]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False), "postgresql"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Verdict:
    """One command's rows against what the devices did."""

    command_id: str
    states: Counter
    played: int  # devices that acted on it (first copy answered ok)
    played_not_acked: dict[str, int]  # state -> rows not `acked` although the device played it
    acked_not_played: int  # rows `acked` for a device that never acted on it
    missed: int  # reachable devices that never received it (checked for commands that must arrive)
    played_twice: int  # devices that acted on a command more than once
    late: int  # rows not terminal within the TTL (or still not terminal at all)
    t99_s: float | None  # from the command's creation to 99 % of its rows terminal
    received: int = 0
    repeats: int = 0  # copies of a command a device had played, received again (answered, not acted on)

    def line(self) -> str:
        states = " ".join(f"{k}={v}" for k, v in sorted(self.states.items()))
        bad = " ".join(f"{k}={v}" for k, v in sorted(self.played_not_acked.items()) if v) or "0"
        t99 = "never" if self.t99_s is None else f"{self.t99_s:.1f}s"
        return (f"rows[{states}] received={self.received} played={self.played} "
                f"played_but_not_acked[{bad}] acked_not_played={self.acked_not_played} missed={self.missed} "
                f"repeats={self.repeats} played_twice={self.played_twice} late={self.late} t99_terminal={t99}")


class Drill:
    """Servers, database, fleet and hub processes of one scenario. Use as a context manager."""

    def __init__(self, workdir: Path, db_url: str, db_label: str, devices: int = DEVICES, ttl_s: float = TTL_S,
                 batch_size: int = 25) -> None:
        self.workdir, self.db_label, self.n, self.ttl_s = workdir, db_label, devices, ttl_s
        self.redis = RedisServer("redis", free_port(), workdir)
        self.broker = DrillMosquitto("mosquitto", free_port(), workdir)
        self.prefix = f"drill/{uuid.uuid4().hex[:8]}"
        self.config = workdir / "hub.yaml"
        self.config.write_text(yaml.safe_dump({
            "database_url": db_url, "redis_url": self.redis.url, "queue": f"drill-{uuid.uuid4().hex[:8]}",
            "batch_size": batch_size, "state_dir": str(workdir / "var"),
            "plugins": {"mqtt_speaker": {"host": "127.0.0.1", "port": self.broker.port, "topic_prefix": self.prefix,
                                         "publish_timeout_s": 5.0, "connect_timeout_s": 2.0}},
        }), encoding="utf-8")
        self.rt: Runtime | None = None
        self.fleet: Any = None
        self.procs: dict[str, Proc] = {}
        self.worker_names: dict[str, str] = {}  # rq worker name -> proc name
        self._seq = Counter()
        self.addresses = [f"drl-{i:05d}" for i in range(devices)]

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> Drill:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        from hub.fleet.registry import import_area_file, upsert_device
        from hub_mqtt_speaker.device import SimDevice
        from hub_mqtt_speaker.simulator import Fleet

        self.redis.start()
        self.broker.start()
        plugins = Plugins()
        plugins.load_entry_points()
        self.rt = Runtime(load_settings({"HUB_CONFIG": str(self.config)}), plugins=plugins)
        self.rt.db.create()
        with self.rt.db.session() as s:
            import_area_file(s, AREAS)
            for a in self.addresses:
                upsert_device(s, plugins, {"id": a.upper(), "vendor": "mqtt_speaker", "kind": "speaker",
                                           "area_code": COMMUNE, "address": a, "tags": []})
            s.add(Content(id="drill-bulletin", title="Bản tin khẩn (diễn tập)", kind="audio_file", language="vi",
                          body=None, media={"uri": "http://127.0.0.1:9/drill.mp3", "duration_s": 3.0},
                          priority="emergency", created_by="drill", created_at=utcnow()))
        self.fleet = Fleet("127.0.0.1", self.broker.port, self.prefix,
                           [SimDevice(a) for a in self.addresses], status_interval=30.0)
        self.fleet.start(timeout=120)
        self.spawn("ingest")
        self.wait_online()
        for _ in range(2):
            self.spawn("worker")
        for p in self.procs.values():
            if p.name.startswith("worker"):
                wait_until(lambda p=p: "Listening on" in p.output(), 60, f"{p.name} to listen", self.live())
        # as in a running province: both workers have their MQTT connection open, every device a status row
        warm = self.send("set_volume", {"level": 40}, priority="normal")
        self.wait_terminal(warm, self.ttl_s + 20)

    def close(self) -> None:
        for p in self.procs.values():
            with contextlib.suppress(Exception):
                p.stop()
        if self.fleet is not None:
            with contextlib.suppress(Exception):
                self.fleet.stop(timeout=5)
        for srv in (self.broker, self.redis):
            with contextlib.suppress(Exception):
                srv.stop(kill=True)
        if self.rt is not None:
            self.rt.close()

    # -- hub processes ------------------------------------------------------------------------
    def spawn(self, kind: str) -> Proc:
        self._seq[kind] += 1
        name = f"{kind}-{self._seq[kind]}"
        args = [kind]
        if kind == "worker":
            rq_name = f"drill-{name}-{uuid.uuid4().hex[:6]}"
            self.worker_names[rq_name] = name
            args += ["--name", rq_name]
        self.procs[name] = Proc(name, args, self.config, self.workdir)
        return self.procs[name]

    def kill9(self, name: str) -> None:
        p = self.procs[name]
        os.killpg(p.p.pid, signal.SIGKILL)
        p.p.wait(10)

    def live(self) -> list[Proc]:
        return [p for p in self.procs.values() if p.alive()]

    def logs(self, tail: int = 2000) -> str:
        return "\n".join(f"--- {n}\n{p.output()[-tail:]}" for n, p in self.procs.items())

    def wait_online(self) -> None:
        def online() -> bool:
            with self.rt.db.session() as s:
                return s.scalar(select(func.count()).select_from(DeviceStatus)
                                .where(DeviceStatus.online.is_(True))) >= self.n
        wait_until(online, 120, f"{self.n} devices online", self.live())

    def busy_worker(self, timeout: float = 20.0) -> str | None:
        """The proc name of a worker running a job now (polled), or None."""
        from rq.job import Job
        from rq.registry import StartedJobRegistry

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for q in self.rt.queues():
                for jid in StartedJobRegistry(queue=q).get_job_ids(cleanup=False):
                    try:
                        job = Job.fetch(jid, connection=self.rt.redis)
                    except Exception:  # finished and gone meanwhile
                        continue
                    if job.worker_name in self.worker_names:
                        return self.worker_names[job.worker_name]
            time.sleep(0.01)
        return None

    # -- commands -----------------------------------------------------------------------------
    def send(self, verb: str, params: dict[str, Any] | None = None, *, priority: str = "emergency",
             content_id: str | None = None) -> str:
        raw: dict[str, Any] = {"verb": verb, "params": params or {}, "priority": priority,
                               "expires_at": (utcnow() + timedelta(seconds=self.ttl_s)).isoformat(),
                               "target": {"areas": [COMMUNE]}}
        if content_id:
            raw["content_id"] = content_id
        return submit(self.rt, LOCAL_ADMIN, CommandSchema().load(raw)).command.id

    def play(self) -> str:
        return self.send("play", {}, content_id="drill-bulletin")

    def counts(self, command_id: str) -> Counter:
        with self.rt.db.session() as s:
            return Counter(dict(s.execute(select(Delivery.state, func.count()).where(
                Delivery.command_id == command_id).group_by(Delivery.state)).all()))

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return False

    @contextlib.contextmanager
    def slow_database(self) -> Iterator[None]:
        """Writes to `deliveries` wait while this is held (reads go on), as under a database that
        stalls: it pins a worker inside its batch, or an ingest between hearing acks and storing
        them, so that a kill lands there every time rather than by luck of timing."""
        url = self.rt.settings.database_url
        if url.startswith("sqlite"):
            import sqlite3

            conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                conn.execute("ROLLBACK")
                conn.close()
            return
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("LOCK TABLE deliveries IN EXCLUSIVE MODE"))  # SELECTs still run
            try:
                yield
            finally:
                conn.rollback()
        engine.dispose()

    def answered(self, command_id: str) -> int:
        """Devices that have answered the command (published their ack)."""
        return sum(1 for a in self.addresses
                   if any(c.id == command_id and c.ok is not None for c in list(self.fleet.device(a).commands)))

    def started_sending(self, command_id: str) -> bool:
        c = self.counts(command_id)
        return sum(v for k, v in c.items() if k != "queued") > 0

    def wait_terminal(self, command_id: str, timeout: float) -> bool:
        def done() -> bool:
            return all(k in TERMINAL_STATES for k in self.counts(command_id))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            time.sleep(0.2)
        return done()

    # -- the comparison -----------------------------------------------------------------------
    def verdict(self, command_id: str, *, must_arrive: bool = True) -> Verdict:
        with self.rt.db.session() as s:
            created = s.scalar(select(Command.created_at).where(Command.id == command_id))
            rows = s.execute(select(Delivery.device_id, Delivery.state, Delivery.finished_at)
                             .where(Delivery.command_id == command_id)).all()
        created = _as_dt(created)
        states = Counter(st for _, st, _ in rows)
        played_not_acked: Counter = Counter()
        acked_not_played = missed = repeats = played_twice = played_n = received_n = late = 0
        spans: list[float] = []
        for device_id, state, finished_at in rows:
            dev = self.fleet.device(device_id.lower())
            copies = [c for c in list(dev.commands) if c.id == command_id]
            first = next((c for c in copies if not c.duplicate), None)
            played = first is not None and bool(first.ok)
            received_n += bool(copies)
            played_n += played
            if played:
                repeats += sum(1 for c in copies if c.duplicate)
                played_twice += sum(1 for c in copies if not c.duplicate and c.ok) > 1
                if state != "acked":
                    played_not_acked[state] += 1
            elif state == "acked":
                acked_not_played += 1
            if must_arrive and not copies and dev.connected:
                missed += 1
            if state in TERMINAL_STATES and finished_at is not None:
                span = (_as_dt(finished_at) - created).total_seconds()
                spans.append(span)
                late += span > self.ttl_s + TERMINAL_SLACK_S
            else:
                late += 1
        spans.sort()
        need = max(1, -(-len(rows) * 99 // 100))  # ceil(99 %)
        t99 = spans[need - 1] if len(spans) >= need else None
        return Verdict(command_id, states, played_n, dict(played_not_acked), acked_not_played, missed, played_twice,
                       late, t99, received_n, repeats)


def _as_dt(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=None) if value.tzinfo else value
