"""A burst: 10,000 acks and 10,000 status messages arrive at once while the hub consumes
slowly (its MQTT listener thread and its database writer are both slowed down).

With the broker configured as shipped (deploy/mosquitto/dev.conf: max_queued_messages 0,
max_inflight_messages 0) nothing is lost. With Mosquitto's defaults (1,000 queued QoS 1
messages per client, 20 in flight) the broker silently drops what a slow subscriber cannot
take: the second test shows that trap, which is why deploy/ lifts or sizes the limit."""
from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from hub.config import load_settings
from hub.store.db import utcnow
from hub.delivery.ingest import Ingest
from hub.store.models import Command, Delivery, Device, DeviceStatus
from hub.plugins import Plugins
from hub.runtime import Runtime

from tests.support.fault_services import DATA, Mosquitto, free_port, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

N = 10_000
PUBLISHERS = 4
LISTENER_DELAY_S = 0.0003  # per message, on the listener's network thread
WRITER_DELAY_S = 0.2  # per flush of at most 1,000 items


def _setup(tmp_path, redis_url: str, port: int) -> tuple[Runtime, str, str]:
    pytest.importorskip("hub_mqtt_speaker")
    from hub.fleet.registry import import_area_file

    prefix = f"burst/{uuid.uuid4().hex[:8]}"
    settings = load_settings({"HUB_CONFIG": str(write_config(tmp_path, redis_url, port, prefix))})
    plugins = Plugins()
    plugins.load_entry_points()
    rt = Runtime(settings, plugins=plugins)
    rt.db.create()
    now = utcnow()
    caps = sorted(plugins.vendors()["mqtt_speaker"].manifest.capabilities)
    cid = uuid.uuid4().hex
    with rt.db.session() as s:
        import_area_file(s, DATA / "legacy-three-level.yaml")
        s.execute(Device.__table__.insert(), [
            {"id": f"B{i:05d}", "name": "", "vendor": "mqtt_speaker", "model": None, "kind": "speaker",
             "area_code": "27694", "address": f"b{i:05d}", "capabilities": caps, "config": {},
             "admin_state": "enabled", "created_at": now} for i in range(N)])
        s.add(Command(id=cid, verb="set_volume", params={"level": 42}, content_id=None, priority="emergency",
                      expires_at=now + timedelta(minutes=10), idempotency_key=None, request_hash="x",
                      issuer="test", target={"areas": ["27694"]}, created_at=now, total=N))
        s.flush()
        s.execute(Delivery.__table__.insert(), [
            {"command_id": cid, "device_id": f"B{i:05d}", "vendor": "mqtt_speaker", "state": "sent", "attempts": 1,
             "queued_at": now, "sent_at": now} for i in range(N)])
    return rt, prefix, cid


def _slow_ingest(rt: Runtime) -> Ingest:
    ing = Ingest(rt, vendors=["mqtt_speaker"], max_batch=1000)
    sink = ing.sink
    for name in ("ack", "status", "presence"):
        real = getattr(sink, name)

        def slow(*args, _real=real, **kwargs):  # kwargs: the sink's `done` (hub.vendor.ResultSink)
            time.sleep(LISTENER_DELAY_S)
            return _real(*args, **kwargs)
        setattr(sink, name, slow)
    real_write = ing._write

    def slow_write(items):
        time.sleep(WRITER_DELAY_S)
        return real_write(items)
    ing._write = slow_write
    return ing


def _publish_burst(port: int, prefix: str, cid: str) -> float:
    """Every device's ack and a status, from PUBLISHERS clients at once; returns seconds taken."""
    from hub_mqtt_speaker import protocol

    ts = protocol.iso(protocol.utcnow())
    errors: list[str] = []

    def run(k: int) -> None:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"burst-{k}-{uuid.uuid4().hex[:6]}",
                        protocol=mqtt.MQTTv311, clean_session=True)
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        c.connect("127.0.0.1", port, keepalive=60)
        c.loop_start()
        try:
            infos = []
            for i in range(k, N, PUBLISHERS):
                a = f"b{i:05d}"
                infos.append(c.publish(protocol.topic(prefix, a, protocol.ACK),
                                       protocol.encode(protocol.ack_payload(cid, True, None, {"volume": 42})), qos=1))
                infos.append(c.publish(protocol.topic(prefix, a, protocol.STATUS),
                                       protocol.encode({"online": True, "activity": "idle", "volume": 42, "ts": ts}),
                                       qos=1))
            for info in infos:
                info.wait_for_publish(60)
                if not info.is_published():
                    errors.append(f"publisher {k}: message {info.mid} not confirmed")
                    break
        finally:
            c.disconnect()
            c.loop_stop()

    began = time.monotonic()
    threads = [threading.Thread(target=run, args=(k,)) for k in range(PUBLISHERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors, errors[:3]
    return time.monotonic() - began


def _outcome(rt: Runtime, cid: str) -> tuple[int, int]:
    with rt.db.session() as s:
        acked = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.command_id == cid,
                                                                          Delivery.state == "acked"))
        volume = s.scalar(select(func.count()).select_from(DeviceStatus).where(DeviceStatus.volume == 42))
    return acked, volume


def _run(tmp_path, own_redis, broker: Mosquitto, label: str, settle_s: float, deadline_s: float) -> dict:
    rt, prefix, cid = _setup(tmp_path, own_redis.url, broker.port)
    ing = _slow_ingest(rt)
    ing.start()
    try:
        took = _publish_burst(broker.port, prefix, cid)
        # until everything is in, or nothing more arrives for settle_s
        last, quiet_since, began = None, time.monotonic(), time.monotonic()
        while time.monotonic() - began < deadline_s:
            now_ = _outcome(rt, cid) + (ing.sink.buffer.qsize(),)
            if now_[:2] == (N, N):
                break
            if now_ != last:
                last, quiet_since = now_, time.monotonic()
            elif time.monotonic() - quiet_since > settle_s:
                break
            time.sleep(0.5)
        acked, volume = _outcome(rt, cid)
    finally:
        ing.stop()
        rt.close()
    fig = {"published_acks": N, "published_status": N, "publish_s": round(took, 1), "acked": acked,
           "status_applied": volume, "lost_acks": N - acked, "lost_status": N - volume,
           "elapsed_s": round(time.monotonic() - began, 1)}
    print(f"\n[burst: {label}] " + ", ".join(f"{k}={v}" for k, v in fig.items()))
    return fig


def test_fault_burst_of_acks_none_lost_with_shipped_broker_config(tmp_path, own_redis, own_broker) -> None:
    fig = _run(tmp_path, own_redis, own_broker, "shipped dev.conf", settle_s=15, deadline_s=90)
    assert fig["acked"] == N and fig["status_applied"] == N


def test_fault_burst_trap_mosquitto_default_queue_drops(tmp_path, own_redis) -> None:
    """The trap, shown: the same burst through a broker with Mosquitto's default limits."""
    import shutil

    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    broker = Mosquitto("mosquitto-defaults", free_port(), tmp_path, shipped=False)
    broker.start()
    try:
        fig = _run(tmp_path, own_redis, broker, "mosquitto defaults (the trap)", settle_s=4, deadline_s=60)
    finally:
        broker.stop(kill=True)
    assert fig["lost_acks"] + fig["lost_status"] > 0, "the default queue limit did not drop anything this time"
