"""`hub demo`: the Long An fleet (508 loudspeaker clusters, 3 LED boards) in province 80,
one emergency bulletin across it, per-device results, then the API until Ctrl-C."""
from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import select

from hub.access.accounts import create_user
from hub.fleet.areas import import_areas, official_rows
from hub.access.actors import LOCAL_ADMIN
from hub.config import Settings
from hub.content import editing, publishing
from hub.delivery.dispatch import counts, submit
from hub.devkit.embedded import EmbeddedBroker, answers, redis_or_fake
from hub.delivery.ingest import Ingest
from hub.delivery.jobs import device_ref
from hub.store.models import Area, Content, Delivery, DeliveryState, Device, DeviceStatus
from hub.fleet.registry import upsert_device
from hub.runtime import Runtime, set_runtime
from hub.delivery.release import Scheduler
from hub.broadcast.programme_loop import ProgrammeLoop
from hub.delivery.worker import make_worker

PROVINCE = "80"  # Tây Ninh, which absorbed Long An on 1 July 2025
VENDOR = "mqtt_speaker"
BULLETIN = "Thông báo khẩn: bão số 3 đang tiến vào đất liền. Bà con khẩn trương chằng chống nhà cửa."


class DemoError(RuntimeError):
    pass


def build_fleet(rt: Runtime, speakers: int, boards: int) -> list[Device]:
    with rt.db.session() as s:
        import_areas(s, official_rows([PROVINCE]))
        communes = list(s.scalars(select(Area.code).where(Area.parent_code == PROVINCE).order_by(Area.code)))
        for i in range(speakers):
            upsert_device(s, rt.plugins, policy=rt.address_policy(), data={
                "id": f"TN-SPK-{i + 1:04d}", "name": f"Cụm loa {i + 1}", "vendor": VENDOR, "kind": "speaker",
                "model": "IP-4G-30W (simulated)", "area_code": communes[i % len(communes)],
                "address": f"spk{i + 1:04d}", "tags": ["demo"]})
        for j in range(boards):
            upsert_device(s, rt.plugins, policy=rt.address_policy(), data={
                "id": f"TN-LED-{j + 1:02d}", "name": f"Bảng tin {j + 1}", "vendor": VENDOR, "kind": "led_board",
                "model": "P10-6m2 (simulated)", "area_code": communes[(j * 31) % len(communes)],
                "address": f"led{j + 1:02d}", "tags": ["demo"]})
    with rt.db.session() as s:
        return list(s.scalars(select(Device).order_by(Device.id)))


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def run(host: str = "127.0.0.1", port: int = 8080, embedded: bool = False, serve: bool = True,
        speakers: int = 508, boards: int = 3, workdir: Path = Path("var/demo"),
        echo: Callable[[str], Any] = print) -> dict[str, int]:
    """Run the demo; returns the per-state counts of the emergency bulletin."""
    if serve and answers(host, port):
        raise DemoError(f"port {port} on {host} is taken; pick another with --port")
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "demo.sqlite3"
    for p in workdir.glob("demo.sqlite3*"):
        p.unlink()
    redis, redis_label = redis_or_fake("redis://127.0.0.1:6379/0", force_fake=embedded)
    broker = None
    if not embedded and answers("127.0.0.1", 1883):
        mqtt_port, mqtt_label = 1883, "Mosquitto at 127.0.0.1:1883"
    else:
        broker = EmbeddedBroker(prefer_amqtt=os.environ.get("HUB_EMBEDDED_BROKER") == "amqtt").start()
        mqtt_port, mqtt_label = broker.port, f"embedded {broker.kind} broker at 127.0.0.1:{broker.port}"
    run_id = uuid.uuid4().hex[:8]
    settings = Settings(database_url=f"sqlite:///{db_path}", queue=f"demo-{run_id}", default_ttl_s=120,
                        retry_backoff_s=(0.5, 1.0), state_dir=str(workdir),
                        # the demo speaks offline (no traffic beyond this machine); devices would
                        # fetch the audio from the API this demo serves
                        speech_providers=["espeak_ng"], public_base_url=f"http://{host}:{port}",
                        plugins={VENDOR: {"host": "127.0.0.1", "port": mqtt_port, "topic_prefix": f"demo/{run_id}",
                                         "connect_timeout_s": 30}})
    rt = Runtime(settings, redis=redis)
    set_runtime(rt)  # jobs run in this process and look the runtime up
    rt.db.create()
    echo(f"jobs: {redis_label}\nMQTT: {mqtt_label}\ndatabase: {db_path}")
    devices = build_fleet(rt, speakers, boards)
    echo(f"fleet: {speakers} loudspeaker clusters and {boards} LED boards across the communes of province "
         f"{PROVINCE} (Tây Ninh)")
    demo_users(rt, devices, echo)
    factory = rt.plugins.simulators().get(VENDOR)
    if factory is None:
        raise DemoError(f"the {VENDOR} plugin registers no simulator; is hub-vendor-mqtt-speaker installed?")
    ingest = Ingest(rt)  # listening before the devices connect, so no presence or ack is missed
    sim = factory(settings.plugin_config(VENDOR), [device_ref(d) for d in devices])
    scheduler = Scheduler(rt, name=f"demo-{run_id}")  # commands given a start_at through the API
    programmes = ProgrammeLoop(rt, name=f"demo-{run_id}-programmes")  # and programmes' occurrences
    try:
        ingest.start()
        sim.start()
        worker = make_worker(rt, threaded=True, name=f"demo-{run_id}")
        threading.Thread(target=worker.work, kwargs={"logging_level": "WARNING"}, daemon=True).start()
        scheduler.start()
        programmes.start()

        def all_online() -> bool:
            with rt.db.session() as s:
                online = s.scalars(select(DeviceStatus.device_id).where(DeviceStatus.online.is_(True))).all()
            return len(online) >= len(devices)
        if not _wait(all_online, 60):
            echo("warning: not every simulated device reported online within 60 s")
        result = _bulletin(rt, echo)
        if serve:
            _serve(rt, host, port, echo)
        return result
    finally:
        programmes.stop()
        scheduler.stop()
        sim.stop()
        ingest.stop()
        rt.close()
        if broker is not None:
            broker.stop()
        set_runtime(None)


def _bulletin(rt: Runtime, echo: Callable[[str], Any]) -> dict[str, int]:
    content = _spoken_bulletin(rt, echo)
    started = time.monotonic()
    play = submit(rt, LOCAL_ADMIN, {"verb": "play", "content_id": content.id, "params": {"repeat": 1},
                                    "target": {"areas": [PROVINCE]}})
    led = submit(rt, LOCAL_ADMIN, {"verb": "led_show", "priority": "emergency",
                                   "params": {"text": "Thông báo khẩn: bão số 3", "effect": "scroll"},
                                   "target": {"areas": [PROVINCE], "kinds": ["led_board"]}})
    echo(f"\nemergency bulletin {play.command.id}: play to every device of province {PROVINCE}"
         f"\nLED text {led.command.id}: \"Thông báo khẩn: bão số 3\" to the boards\n")

    def done(cid: str) -> bool:
        with rt.db.session() as s:
            c = counts(s, cid)
        return c[DeliveryState.QUEUED] + c[DeliveryState.SENT] == 0
    _wait(lambda: done(play.command.id) and done(led.command.id), 60)
    elapsed = time.monotonic() - started
    with rt.db.session() as s:
        names = dict(s.execute(select(Area.code, Area.name)).tuples().all())
        rows = s.execute(select(Delivery, Device).join(Device, Device.id == Delivery.device_id)
                         .where(Delivery.command_id.in_([play.command.id, led.command.id]))
                         .order_by(Device.id, Delivery.id)).all()
        echo(f"{'device':<12} {'kind':<10} {'commune':<26} {'verb':<9} {'state':<12} {'ms':>6}  reason")
        for d, dev in rows:
            ms = f"{(d.finished_at - d.queued_at).total_seconds() * 1000:.0f}" if d.finished_at else ""
            verb = "play" if d.command_id == play.command.id else "led_show"
            echo(f"{dev.id:<12} {dev.kind:<10} {names.get(dev.area_code, '')[:26]:<26} {verb:<9} {d.state:<12}"
                 f" {ms:>6}  {d.reason or ''}")
        tally = Counter(d.state for d, _ in rows)
        play_counts = counts(s, play.command.id)
    echo(f"\n{len(rows)} deliveries in {elapsed:.1f} s: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
    return play_counts


def _spoken_bulletin(rt: Runtime, echo: Callable[[str], Any]) -> Content:
    """The storm bulletin as a province administrator makes it in an emergency: written, approved
    and published in one step, then spoken offline into the media store. Without espeak-ng it
    plays a recorded file instead (scripts/services.sh installs espeak-ng and ffmpeg)."""
    with rt.db.session() as s:
        content = editing.create(s, LOCAL_ADMIN, {"title": "Bão số 3", "kind": "tts_text", "language": "vi",
                                                  "body": BULLETIN, "priority": "emergency", "area_code": PROVINCE,
                                                  "origin": {"source": "demo"}})
        editing.transition(s, LOCAL_ADMIN, content, "approve_and_publish")
    outcome = publishing.speak(rt, [content.id]).get(content.id)
    with rt.db.session() as s:
        content = s.get(Content, content.id)
        if outcome in ("spoken", "cached"):
            media, speech = content.media or {}, content.speech or {}
            echo(f"bulletin spoken offline by {speech.get('provider')}: {media.get('duration_s', 0):.1f} s of MP3 at "
                 f"{speech.get('loudness_lufs', 0):.1f} LUFS, stored as {media.get('key')}; devices fetch it by a "
                 f"signed URL from {rt.settings.public_base_url}/media/…")
        else:
            echo(f"warning: the bulletin could not be spoken ({outcome}); a recorded file plays instead")
            content.media = {"uri": "http://127.0.0.1/demo/bao-so-3.mp3", "duration_s": 8.0}
    return content


def demo_users(rt: Runtime, devices: list[Device], echo: Callable[[str], Any]) -> dict[str, str]:
    """The demo's accounts, with passwords generated now and printed this once."""
    commune = devices[0].area_code
    logins = {}
    with rt.db.session() as s:
        for name, role, area in (("demo-admin", "administrator", PROVINCE), ("demo-operator", "operator", commune)):
            _user, logins[name] = create_user(s, LOCAL_ADMIN, name, [role], [area])
        commune_name = s.get(Area, commune).name
    echo(f"accounts (passwords generated for this run, shown once):"
         f"\n  demo-admin     administrator of province {PROVINCE}   password {logins['demo-admin']}"
         f"\n  demo-operator  operator of commune {commune} ({commune_name})   password {logins['demo-operator']}")
    return logins


def _serve(rt: Runtime, host: str, port: int, echo: Callable[[str], Any]) -> None:
    from werkzeug.serving import make_server

    from hub.api import create_app

    server = make_server(host, port, create_app(rt), threaded=True)  # accounts: sign in first
    base = f"http://{host}:{port}"
    echo(f"\nConsole (bảng điều khiển): {base}/  ·  sign in with an account above"
         f"\nAPI: {base}/api/devices  ·  Swagger UI: {base}/api/docs"
         f"\n     sign in: curl -s -c /tmp/hub-demo.cookies -H 'Content-Type: application/json' "
         f"-d '{{\"name\": \"demo-admin\", \"password\": \"<its password above>\"}}' {base}/api/auth/login"
         f"\n     then:    curl -s -b /tmp/hub-demo.cookies {base}/api/commands | head\nCtrl-C to stop.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        echo("\nstopping")
    finally:
        server.server_close()
