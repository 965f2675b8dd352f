"""A whole hub in one process, for testing a vendor plugin the way the hub will drive it.

Plugin test suites (ours and vendors') and the conformance suite use it: commands go through
the real dispatch, the real rq job (run by a burst worker here) and the plugin's adapter, and
acks come back through the plugin's listener and the real ingest.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from hub.addresses import AddressPolicy
from hub.fleet.areas import AreaRow, import_areas
from hub.access.actors import LOCAL_ADMIN
from hub.config import Settings
from hub.store.db import utcnow
from hub.delivery.dispatch import Submitted, submit
from hub.devkit.embedded import redis_or_fake
from hub.delivery.ingest import Ingest
from hub.store.models import TERMINAL_STATES, Content, Delivery, Device, DeviceStatus
from hub.plugins import Plugins
from hub.fleet.registry import default_capabilities, upsert_device
from hub.runtime import JOB_SERIALIZER, QUEUE_ORDER, Runtime, set_runtime
from hub.schemas import CommandSchema, ContentSchema
from hub.schemas.status import REPORTED_FIELDS
from hub.delivery.worker import ThreadWorker, make_worker

AREA = "T0"  # the harness's one area; not an official code

TIME_SCALE_ENV = "HUB_TEST_TIME_SCALE"


class _LoggerRegistry(dict):  # type: ignore[type-arg]
    """logging's registry of loggers (Manager.loggerDict), whose values() is a copy."""

    def values(self) -> list[Any]:  # type: ignore[override]
        return list(super().values())  # one C call: no other thread inserts in between


def guard_logger_registry() -> None:
    """Let pytest's log capture iterate the loggers while other threads create new ones.

    Since pytest 9.2, each test phase walks logging's registry of loggers to attach its handler
    to the non-propagating ones. A thread of the hub (an adapter's paho client, an ingest) that
    names a new logger at that moment raised "dictionary changed size during iteration" in
    pytest itself: seen failing a certification check under load. The registry's values() is
    made a copy, taken while no other thread runs Python code. Call it at start-up, before the
    threads (pytest_configure). Idempotent."""
    manager = logging.Logger.manager
    if not isinstance(manager.loggerDict, _LoggerRegistry):
        manager.loggerDict = _LoggerRegistry(manager.loggerDict)


def time_scale() -> float:
    """How many times longer than on an idle machine the tests may take to see what they wait
    for: HUB_TEST_TIME_SCALE (1 when unset; `make test` sets 2, so that the suite passes beside
    CPU-bound processes). Every deadline of the harness, of the conformance suite's simulator runs
    and of the tests that wait is derived from it here. It stretches the test harness's waits and
    the limits a simulator run is held to, never the limits a vendor's device is certified
    against (hub_conformance.params)."""
    raw = os.environ.get(TIME_SCALE_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{TIME_SCALE_ENV}={raw!r} is not a number (e.g. 2 on a loaded machine)") from None
    if not 1.0 <= value <= 20.0:
        raise ValueError(f"{TIME_SCALE_ENV}={raw!r}: must be between 1 and 20")
    return value


def scaled(seconds: float) -> float:
    """`seconds` on an idle machine, stretched by time_scale()."""
    return seconds * time_scale()


@dataclass(frozen=True)
class Outcome:
    state: str
    reason: str | None
    result: dict[str, Any] | None
    attempts: int


class HubHarness:
    """Use as a context manager. `vendor` is the plugin's manifest name, `config` its settings.
    `device_networks` / `device_serial_prefixes`: where devices may be (hub.addresses); loopback
    by default, where simulators listen."""

    def __init__(self, workdir: Path, vendor: str, config: dict[str, Any], *, plugins: Plugins | None = None,
                 retry_backoff_s: tuple[float, ...] = (0.1, 0.2), default_ttl_s: int = 30,
                 redis_url: str | None = None, listen: bool = True, heartbeat_timeout_s: float = 180.0,
                 device_networks: tuple[str, ...] = ("127.0.0.1", "::1"),
                 device_serial_prefixes: tuple[str, ...] | None = None) -> None:
        self.vendor = vendor
        self.listen = listen
        if plugins is None:
            plugins = Plugins()
            plugins.load_entry_points()
        redis, self.redis_label = redis_or_fake(redis_url or os.environ.get("HUB_TEST_REDIS_URL",
                                                                             "redis://127.0.0.1:6379/0"))
        settings = Settings(database_url=f"sqlite:///{Path(workdir) / f'harness-{uuid.uuid4().hex[:8]}.sqlite3'}",
                            queue=f"harness-{uuid.uuid4().hex[:10]}", retry_backoff_s=retry_backoff_s,
                            default_ttl_s=default_ttl_s, sweep_interval_s=0.2, plugins={vendor: dict(config)},
                            heartbeat_timeout_s=heartbeat_timeout_s,
                            # simulators listen on loopback ports; the hub's own Redis and broker
                            # stay refused (hub.addresses)
                            device_networks=list(device_networks), state_dir=str(workdir))
        if device_serial_prefixes is not None:
            settings.device_serial_prefixes = list(device_serial_prefixes)
        self.rt = Runtime(settings, redis=redis, plugins=plugins)
        self.ingest: Ingest | None = None
        self._work_lock = threading.RLock()

    def __enter__(self) -> HubHarness:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.rt.db.create()
        with self.rt.db.session() as s:
            import_areas(s, [AreaRow(AREA, "Harness area", "commune")])
        set_runtime(self.rt)
        if self.listen:
            self.start_ingest()

    def start_ingest(self) -> None:
        """Start listening (done by start() unless the harness was made with listen=False, for a
        caller that must first start what the adapter listens to, such as a simulator)."""
        self.listen = True
        self.ingest = Ingest(self.rt, vendors=[self.vendor])
        self.ingest.start()

    def run_worker(self, interval_s: float = 0.2) -> None:
        """Also work jobs in a background thread, as a hub's workers would: the jobs the hub
        enqueues by itself (plays it held released by the ingest, lost jobs enqueued again)."""
        stop = self._worker_stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval_s):
                try:
                    with self._work_lock:
                        self._perform_queued()
                except Exception:  # Redis hiccup: the next round tries again
                    logging.getLogger(__name__).warning("harness worker failed", exc_info=True)

        self._worker_thread = threading.Thread(target=loop, name="harness-worker", daemon=True)
        self._worker_thread.start()

    def _perform_queued(self) -> None:
        # Not an rq Worker per round: in a background thread its teardown can hang on its pubsub
        # thread. Jobs are popped and performed here, in priority order.
        for q in self.rt.queues():
            while (raw := q.connection.lpop(q.key)) is not None:
                job = q.fetch_job(raw.decode() if isinstance(raw, bytes) else raw)
                if job is not None:
                    job.perform()

    def stop(self) -> None:
        if getattr(self, "_worker_thread", None) is not None:
            self._worker_stop.set()
            self._worker_thread.join(timeout=30)
            self._worker_thread = None
        if self.ingest is not None:
            self.ingest.stop()
            self.ingest = None
        try:
            purge_queues(self.rt.redis, [self.rt.queue_name(p) for p in QUEUE_ORDER])
        except Exception:  # the queue may be the thing a fault test took down
            pass
        self.rt.close()
        set_runtime(None)

    # -- devices and commands -------------------------------------------------------------------
    def add_device(self, device_id: str, address: str, kind: str = "speaker", *,
                   capabilities: list[str] | None = None, config: dict[str, Any] | None = None,
                   checked: bool = True) -> str:
        """Register a device as the API would. `checked=False` writes the row as it stands, the
        way an earlier release stored addresses it never checked (to test an adapter's own check)."""
        data: dict[str, Any] = {"id": device_id, "vendor": self.vendor, "kind": kind, "area_code": AREA,
                                "address": address, "tags": [], "config": config or {}}
        if capabilities is not None:
            data["capabilities"] = capabilities
        with self.rt.db.session() as s:
            if checked:
                upsert_device(s, self.rt.plugins, data, policy=self.rt.address_policy())
            else:
                caps = capabilities if capabilities is not None else \
                    default_capabilities(self.rt.plugins, self.vendor, kind)
                s.add(Device(id=device_id, name="", vendor=self.vendor, kind=kind, area_code=AREA, address=address,
                             capabilities=sorted(caps), config=config or {}, admin_state="enabled",
                             created_at=utcnow()))
        if self.ingest is not None:  # polling adapters learn of the device now, not at the next refresh
            self.ingest.refresh_watch()
        return device_id

    def add_content(self, **fields: Any) -> str:
        data = ContentSchema().load(fields)
        cid = uuid.uuid4().hex
        with self.rt.db.session() as s:
            s.add(Content(id=cid, title=data["title"], kind=data["kind"], language=data["language"],
                          body=data.get("body"), media=data.get("media"), priority=data["priority"],
                          created_by="harness", created_at=utcnow()))
        return cid

    def send(self, verb: str, devices: list[str], params: dict[str, Any] | None = None, *,
             content_id: str | None = None, priority: str | None = None, expires_in: float | None = None,
             run_worker: bool = True) -> Submitted:
        raw: dict[str, Any] = {"verb": verb, "params": params or {}, "target": {"devices": devices}}
        if content_id:
            raw["content_id"] = content_id
        if priority:
            raw["priority"] = priority
        if expires_in is not None:
            raw["expires_at"] = (utcnow() + timedelta(seconds=expires_in)).isoformat()
        # With a background worker (run_worker), the job must still have run when send returns.
        with self._work_lock:
            sub = submit(self.rt, LOCAL_ADMIN, CommandSchema().load(raw))
            if run_worker:
                self.work()
        return sub

    def work(self) -> None:
        """Run every queued job now, in this thread."""
        make_worker(self.rt, threaded=True).work(burst=True, logging_level="WARNING")

    def outcomes(self, command_id: str) -> dict[str, Outcome]:
        with self.rt.db.session() as s:
            rows = s.scalars(select(Delivery).where(Delivery.command_id == command_id))
            return {d.device_id: Outcome(d.state, d.reason, d.result, d.attempts) for d in rows}

    def wait(self, command_id: str, timeout: float = 10.0) -> dict[str, Outcome]:
        """Outcomes once every device is terminal, or as they stand after `timeout` (scaled)."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            got = self.outcomes(command_id)
            if all(o.state in TERMINAL_STATES for o in got.values()) or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    def status(self, device_id: str) -> dict[str, Any] | None:
        with self.rt.db.session() as s:
            st = s.get(DeviceStatus, device_id)
            if st is None:
                return None
            return {c: getattr(st, c) for c in (*REPORTED_FIELDS, "last_seen_at")}

    def wait_status(self, device_id: str, predicate: Any, timeout: float = 10.0) -> dict[str, Any] | None:
        deadline = time.monotonic() + scaled(timeout)
        while True:
            st = self.status(device_id)
            if (st is not None and predicate(st)) or time.monotonic() > deadline:
                return st
            time.sleep(0.05)


class _StoppableWorker(ThreadWorker):
    """A worker that runs until told to stop, like `hub worker`: it blocks on the queues (BLPOP,
    a second at a time, so that it can stop) and takes each job the moment it is queued."""

    idle_poll_s = 1

    def __init__(self, *args: Any, stop: threading.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stop_event = stop

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        while not self._stop_event.is_set():
            got = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time=self.idle_poll_s)
            if got is not None:
                return got
        return None  # the work loop ends, tears the worker down (rq's registries) and returns


class WorkerThreads:
    """`n` job workers in threads of this process, each one long-lived as `hub worker` runs —
    not a burst worker started again and again, whose set-up and teardown (a pubsub connection
    and thread each time) leave moments when no worker listens. Use as a context manager, or
    call stop()."""

    def __init__(self, rt: Runtime, n: int = 1, queues: list[Any] | None = None) -> None:
        """`queues`: the rq queues to serve (default: the delivery queues, rt.queues())."""
        self.rt = rt
        self._stop = threading.Event()
        self.workers = [_StoppableWorker(queues or rt.queues(), connection=rt.redis, serializer=JOB_SERIALIZER,
                                         stop=self._stop) for _ in range(n)]
        self.threads = [threading.Thread(target=self._run, args=(w,), name=f"test-worker-{i}", daemon=True)
                        for i, w in enumerate(self.workers)]
        for t in self.threads:
            t.start()

    def _run(self, worker: _StoppableWorker) -> None:
        while not self._stop.is_set():
            try:
                worker.work(burst=False, logging_level="WARNING")
            except Exception:  # a Redis hiccup ends rq's loop: start again, as a supervisor would
                logging.getLogger(__name__).warning("test worker failed; starting again", exc_info=True)
                self._stop.wait(0.2)

    def __enter__(self) -> WorkerThreads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the jobs being run (a worker between jobs stops within a second)."""
        self._stop.set()
        for t in self.threads:
            t.join(timeout)


def purge_queues(redis: Any, names: list[str]) -> None:
    """Remove rq queues and everything rq keeps about them: their jobs and results, and the
    registries (finished, failed, started, …), which are keys of their own with no expiry — on a
    shared Redis, a run with queue names of its own must not leave them behind."""
    from rq import Queue
    from rq.registry import (DeferredJobRegistry, FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry,
                             StartedJobRegistry)

    for name in names:
        q = Queue(name, connection=redis)
        ids = set(q.job_ids)
        for reg in (StartedJobRegistry, FinishedJobRegistry, FailedJobRegistry, DeferredJobRegistry,
                    ScheduledJobRegistry):
            ids.update(reg(queue=q).get_job_ids(cleanup=False))
        for jid in ids:
            redis.delete(f"rq:job:{jid}", f"rq:results:{jid}")
        q.delete(delete_jobs=True)
        for pattern in (f"rq:*:{name}", f"rq:*:{name}:*"):
            for key in redis.scan_iter(pattern):
                redis.delete(key)


def loopback_address_policy(*serial_prefixes: str, networks: tuple[str, ...] = ()) -> AddressPolicy:
    """The policy for plugin tests that build adapters by hand (hub.addresses.set_default_policy):
    devices on loopback ports, where simulators listen, plus serial ports under the default
    prefixes and `serial_prefixes`. The default Redis and MQTT ports stay refused."""
    settings = Settings(device_networks=["127.0.0.1", "::1", *networks])
    settings.device_serial_prefixes = [*settings.device_serial_prefixes, *serial_prefixes]
    return AddressPolicy.from_settings(settings)


class RecordingSink:
    """A thread-safe ResultSink for adapter tests: remembers every ack, status and presence it is
    handed (as (address, value) pairs) and lets a test wait for what it expects."""

    def __init__(self, wait_timeout: float = 10.0) -> None:
        self.acks: list[tuple[str, Any]] = []
        self.statuses: list[tuple[str, dict[str, Any]]] = []
        self.presence_events: list[tuple[str, bool]] = []
        self.vendors: set[str] = set()
        self.wait_timeout = wait_timeout
        self._cond = threading.Condition()

    def _record(self, vendor: str, into: list[Any], item: Any) -> None:
        with self._cond:
            self.vendors.add(vendor)
            into.append(item)
            self._cond.notify_all()

    def ack(self, vendor: str, address: str, ack: Any) -> None:
        self._record(vendor, self.acks, (address, ack))

    def status(self, vendor: str, address: str, status: dict[str, Any]) -> None:
        self._record(vendor, self.statuses, (address, status))

    def presence(self, vendor: str, address: str, online: bool) -> None:
        self._record(vendor, self.presence_events, (address, online))

    def wait(self, predicate: Any, timeout: float | None = None) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, scaled(self.wait_timeout if timeout is None else timeout))

    def acks_for(self, address: str) -> list[Any]:
        with self._cond:
            return [a for addr, a in self.acks if addr == address]

    def ack_by_id(self, command_id: str) -> Any:
        with self._cond:
            return next((a for _addr, a in self.acks if a.command_id == command_id), None)

    def statuses_for(self, address: str) -> list[dict[str, Any]]:
        with self._cond:
            return [s for addr, s in self.statuses if addr == address]

    def presence_for(self, address: str) -> list[bool]:
        with self._cond:
            return [on for addr, on in self.presence_events if addr == address]


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll `predicate` until it holds or `timeout` (scaled) passes; its last answer."""
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def device_body(vendors: dict[str, str], did: str, kind: str, area: str, tags: list[str] | None = None,
                **extra: Any) -> dict[str, Any]:
    """A POST /api/devices body for a device of `kind` (its vendor taken from `vendors`)."""
    return {"id": did, "name": f"Thiết bị {did}", "vendor": vendors[kind], "kind": kind, "area_code": area,
            "address": f"addr-{did}", "tags": tags or [], **extra}
