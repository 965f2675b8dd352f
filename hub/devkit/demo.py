"""`hub demo`: the simulated Long An fleet (508 loudspeaker clusters, 3 LED boards) in province 80
and the story of hub.devkit.demo_story — a morning programme, a CAP storm warning from a local feed
that pre-empts it on the communes it names, the programme resuming — with the console serving
from the start, so a person can watch every delivery live, until Ctrl-C.

Nothing is left behind: the database, media and sources file live in a temporary folder removed on
exit; the fleet clears the retained presence it published (a shared broker keeps no trace); an
embedded broker is stopped; the hub's "went offline" warnings are silenced while the fleet leaves.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from hub.access.accounts import actor_for, create_user, get_user
from hub.access.actors import LOCAL_ADMIN
from hub.broadcast.programme_loop import ProgrammeLoop
from hub.config import Settings
from hub.content.polling import make_source_worker
from hub.delivery.ingest import Ingest
from hub.delivery.jobs import device_ref
from hub.delivery.release import Scheduler
from hub.delivery.worker import make_worker
from hub.devkit import demo_story as story
from hub.devkit.demo_feed import CapFeed, alert_areas
from hub.devkit.embedded import EmbeddedBroker, answers, redis_or_fake
from hub.fleet.areas import import_areas, official_rows
from hub.fleet.registry import upsert_device
from hub.runtime import Runtime, set_runtime
from hub.store.batching import chunks
from hub.store.models import Area, Device, DeviceStatus

PROVINCE = story.PROVINCE  # Tây Ninh, which absorbed Long An on 1 July 2025
VENDOR = "mqtt_speaker"
ACCOUNTS = (("demo-admin", "administrator", None), ("demo-operator", "operator", "commune"),
            ("demo-editor", "editor", None), ("demo-approver", "approver", None))


class DemoError(RuntimeError):
    pass


def build_fleet(rt: Runtime, speakers: int, boards: int) -> list[Device]:
    """Speakers spread over the province's communes — those the storm warning names first, so that
    even a small fleet has speakers where it strikes."""
    warned = alert_areas()
    with rt.db.session() as s:
        import_areas(s, official_rows([PROVINCE]))
        communes = list(s.scalars(select(Area.code).where(Area.parent_code == PROVINCE).order_by(Area.code)))
        communes = [c for c in warned if c in communes] + [c for c in communes if c not in warned]
        for i in range(speakers):
            upsert_device(s, rt.plugins, policy=rt.address_policy(), data={
                "id": f"TN-SPK-{i + 1:04d}", "name": f"Cụm loa {i + 1}", "vendor": VENDOR, "kind": "speaker",
                "model": "IP-4G-30W (simulated)", "area_code": communes[i % len(communes)],
                "address": f"spk{i + 1:04d}", "tags": ["demo"]})
        for j in range(boards):
            upsert_device(s, rt.plugins, policy=rt.address_policy(), data={
                "id": f"TN-LED-{j + 1:02d}", "name": f"Bảng tin {j + 1}", "vendor": VENDOR, "kind": "led_board",
                "model": "P10-6m2 (simulated)", "area_code": communes[(j * 31 + 7) % len(communes)],
                "address": f"led{j + 1:02d}", "tags": ["demo"]})
    with rt.db.session() as s:
        return list(s.scalars(select(Device).order_by(Device.id)))


def demo_users(rt: Runtime, echo: Callable[[str], Any]) -> tuple[story.Cast, dict[str, str]]:
    """The demo's accounts, with passwords generated now and printed this once: none is written
    in the code (tests/test_no_default_credentials.py)."""
    commune = alert_areas()[0]  # the operator's commune is one the warning names
    logins: dict[str, str] = {}
    actors = {}
    with rt.db.session() as s:
        commune_name = s.get(Area, commune).name
        for name, role, area in ACCOUNTS:
            _user, logins[name] = create_user(s, LOCAL_ADMIN, name, [role], [commune if area else PROVINCE])
        s.flush()
        for name, _, _ in ACCOUNTS:
            actors[name] = actor_for(s, get_user(s, name), "demo")
    where = {"commune": f"xã {commune} ({commune_name})"}
    echo("\nTài khoản demo (mật khẩu tạo cho lần chạy này, chỉ in một lần) / demo accounts (passwords generated "
         "for this run, shown once):")
    for name, role, area in ACCOUNTS:
        echo(f"  {name:<14} {role} of {where.get(area or '', f'tỉnh {PROVINCE}')}   password {logins[name]}")
    return story.Cast(*(actors[n] for n, _, _ in ACCOUNTS)), logins


@contextmanager
def quiet_exit() -> Iterator[None]:
    """While the demo tears down: no warnings (the fleet leaving is not news), Ctrl-C ignored."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if threading.current_thread() is threading.main_thread() \
        else None
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


class _StopOnce:
    """Ctrl-C or SIGTERM (a supervisor): the first interrupts the demo wherever it is, for the
    quiet tear-down; any later one is let go. A second KeyboardInterrupt raised inside the
    tear-down would cut it short and leave the embedded broker and the fleet running (a second
    Ctrl-C, or one signal taken by several threads)."""

    def __init__(self) -> None:
        self.asked = False

    def __call__(self, *_: Any) -> None:
        if not self.asked:
            self.asked = True
            raise KeyboardInterrupt


def run(host: str = "127.0.0.1", port: int = 8080, embedded: bool = False, once: bool = False,
        speakers: int = 508, boards: int = 3, echo: Callable[[str], Any] = print) -> story.Told:
    """Tell the story; then serve the console until Ctrl-C (or return at once with `once`)."""
    if answers(host, port):
        raise DemoError(f"port {port} on {host} is taken; pick another with --port")
    handlers: dict[int, Any] = {}  # the caller's, put back at the end (tests run the demo in-process)
    if threading.current_thread() is threading.main_thread():
        stop_once = _StopOnce()
        handlers = {sig: signal.signal(sig, stop_once) for sig in (signal.SIGINT, signal.SIGTERM)}
    workdir = Path(tempfile.mkdtemp(prefix="hub-demo-"))
    run_id = uuid.uuid4().hex[:8]
    stack: list[Callable[[], Any]] = []  # what to stop, in reverse order
    told = story.Told()
    try:
        redis, redis_label = redis_or_fake("redis://127.0.0.1:6379/0", force_fake=embedded)
        if not embedded and answers("127.0.0.1", 1883):
            mqtt_port, mqtt_label = 1883, "Mosquitto at 127.0.0.1:1883"
        else:
            broker = EmbeddedBroker(prefer_amqtt=os.environ.get("HUB_EMBEDDED_BROKER") == "amqtt").start()
            stack.append(broker.stop)
            mqtt_port, mqtt_label = broker.port, f"embedded {broker.kind} broker at 127.0.0.1:{broker.port}"
        prefix = f"demo/{run_id}"
        settings = Settings(database_url=f"sqlite:///{workdir / 'demo.sqlite3'}", queue=f"demo-{run_id}",
                            default_ttl_s=120, retry_backoff_s=(0.5, 1.0), state_dir=str(workdir),
                            sources_file=str(workdir / "sources.yaml"),
                            # keys of this run only (it keeps nothing): no warning that they were generated
                            secret_key=secrets.token_urlsafe(32), audit_key=secrets.token_urlsafe(32),
                            # the demo speaks offline (no traffic beyond this machine); devices would
                            # fetch the audio from the API this demo serves
                            speech_providers=["espeak_ng"], public_base_url=f"http://{host}:{port}",
                            plugins={VENDOR: {"host": "127.0.0.1", "port": mqtt_port, "topic_prefix": prefix,
                                              "connect_timeout_s": 30}})
        rt = Runtime(settings, redis=redis)
        stack.append(lambda: clear_redis(redis, run_id))  # last of all: after every worker and thread
        set_runtime(rt)  # jobs run in this process and look the runtime up
        stack.append(lambda: set_runtime(None))
        stack.append(rt.close)
        rt.db.create()
        echo(f"jobs: {redis_label}\nMQTT: {mqtt_label}, topics {prefix}/…\nfiles: {workdir} (removed on exit)")
        devices = build_fleet(rt, speakers, boards)
        cast, _ = demo_users(rt, echo)
        factory = rt.plugins.simulators().get(VENDOR)
        if factory is None:
            raise DemoError(f"the {VENDOR} plugin registers no simulator; is hub-vendor-mqtt-speaker installed?")
        _start_services(rt, run_id, devices, factory, stack)
        base = _serve(rt, host, port, stack)
        echo(f"\nBảng điều khiển / console: {base}/console/  (đăng nhập bằng một tài khoản ở trên / sign in "
             f"with an account above)")
        online = lambda: len(_online(rt)) >= len(devices)  # noqa: E731
        if not story.wait(online, 60):
            echo("warning: not every simulated device reported online within 60 s")
        story.fleet_summary(rt, echo)
        story.morning_programme(rt, cast, told, echo)
        feed = CapFeed().start()
        stack.append(feed.stop)
        story.write_sources(workdir / "sources.yaml", feed.url)
        story.storm_warning(rt, cast, feed.url, told, echo)
        story.preemption(rt, told, echo)
        echo(f"\nTheo dõi trực tiếp / watch it live: {base}/console/commands/{told.emergency_command}"
             f"\nTổng quan / overview: {base}/console/   ·   API: {base}/api/docs")
        if not once:
            echo("Ctrl-C để dừng / to stop.")
            # Until Ctrl-C, waking every half second: the kernel may hand the SIGINT to any of
            # the demo's threads, and Python then raises KeyboardInterrupt only when the main
            # thread next runs, which a wait with no timeout never does (seen in a busy test run).
            while True:
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        with quiet_exit():
            for stop in reversed(stack):
                try:
                    stop()
                except Exception:  # tear-down goes on: every other piece must still stop
                    logging.getLogger(__name__).debug("demo: stopping %s failed", stop, exc_info=True)
            shutil.rmtree(workdir, ignore_errors=True)
        for sig, handler in handlers.items():
            if handler is not None:  # None: set outside Python, nothing to put back
                signal.signal(sig, handler)
        echo("\nĐã dừng, không để lại gì / stopped, nothing left behind.")
    return told


def clear_redis(redis: Any, run_id: str) -> int:
    """Delete what this run kept in a shared Redis: every key naming the run (queues, registries,
    workers, throttles) and the jobs those registries list. How many keys went."""
    keys = {k.decode() if isinstance(k, bytes) else k for k in redis.scan_iter(match=f"*demo-{run_id}*")}
    jobs: set[str] = set()
    for key in keys:
        kind = redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        members = redis.zrange(key, 0, -1) if kind == "zset" else redis.lrange(key, 0, -1) if kind == "list" \
            else []
        jobs |= {m.decode() if isinstance(m, bytes) else m for m in members}
    doomed = sorted(keys | {f"rq:job:{j}" for j in jobs} | {f"rq:results:{j}" for j in jobs})
    for part in chunks(doomed, 500):
        redis.delete(*part)
    return len(doomed)


def _online(rt: Runtime) -> list[str]:
    with rt.db.session() as s:
        return list(s.scalars(select(DeviceStatus.device_id).where(DeviceStatus.online.is_(True))))


def _start_services(rt: Runtime, run_id: str, devices: list[Device], factory: Any,
                    stack: list[Callable[[], Any]]) -> None:
    """Ingest, simulated fleet, delivery and source workers, scheduler and programme loop. The
    ingest stops before the fleet leaves, so no "went offline" is heard."""
    sim = factory(rt.settings.plugin_config(VENDOR), [device_ref(d) for d in devices])
    stack.append(lambda: sim.stop(timeout=10, clear_retained=True))
    ingest = Ingest(rt)  # listening before the devices connect, so no presence or ack is missed
    ingest.start()
    stack.append(ingest.stop)
    sim.start()
    for worker in (make_worker(rt, threaded=True, name=f"demo-{run_id}"),
                   make_source_worker(rt, threaded=True, name=f"demo-{run_id}-sources")):
        # daemon threads: they end with the process (rq's stop request raises in the caller's thread)
        threading.Thread(target=worker.work, kwargs={"logging_level": "WARNING"}, daemon=True).start()
    scheduler = Scheduler(rt, name=f"demo-{run_id}")  # commands given a start_at: the programme's
    scheduler.start()
    stack.append(scheduler.stop)
    programmes = ProgrammeLoop(rt, name=f"demo-{run_id}-programmes")
    programmes.start()
    stack.append(programmes.stop)


def _serve(rt: Runtime, host: str, port: int, stack: list[Callable[[], Any]]) -> str:
    """The API and console on a thread from the start: the story can be watched as it happens."""
    from werkzeug.serving import make_server

    from hub.api import create_app

    # no access log: the story is the output, and an open progress page polls every half second
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, create_app(rt), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="demo-http", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
    stack.append(stop)
    return f"http://{host}:{port}"
