"""Bare paho clients with no hub: the raw floor every hub figure is compared with."""
from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt

from hub_mqtt_speaker import protocol


def client(name: str, port: int, inflight: int = 0) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{name}-{uuid.uuid4().hex[:6]}",
                    clean_session=True, protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(inflight)
    c.max_queued_messages_set(0)
    ok = threading.Event()
    c.on_connect = lambda *_a: ok.set()
    c.connect("127.0.0.1", port, keepalive=60)
    c.loop_start()
    if not ok.wait(10):
        raise RuntimeError(f"{name}: no CONNACK from 127.0.0.1:{port}")
    return c


def subscribe(c: mqtt.Client, filters: list[tuple[str, int]], timeout: float = 10) -> None:
    ok = threading.Event()
    c.on_subscribe = lambda *_a: ok.set()
    c.subscribe(filters)
    if not ok.wait(timeout):
        raise RuntimeError(f"no SUBACK for {filters}")


class Counter:
    """Counts messages on a filter, remembering the monotonic time of each."""

    def __init__(self, port: int, topic_filter: str, name: str = "bench-counter") -> None:
        self.times: list[float] = []
        self.done = threading.Event()
        self.expect = 0
        self.c = client(name, port)
        self.c.on_message = self._on
        subscribe(self.c, [(topic_filter, 1)])

    def _on(self, _c: Any, _u: Any, _m: Any) -> None:
        self.times.append(time.monotonic())
        if self.expect and len(self.times) >= self.expect:
            self.done.set()

    def arm(self, expect: int) -> None:
        self.times = []
        self.expect = expect
        self.done.clear()

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def control(port: int, prefix: str, word: str, collect: int = 0, timeout: float = 10) -> list[dict[str, Any]]:
    """Send a control word to the bench simulators; with `collect`, wait for that many reports."""
    got: list[dict[str, Any]] = []
    done = threading.Event()
    c = client("bench-ctl", port)
    try:
        if collect:
            def on(_c: Any, _u: Any, m: Any) -> None:
                got.append(json.loads(m.payload))
                if len(got) >= collect:
                    done.set()
            c.on_message = on
            subscribe(c, [(f"{prefix}/_bench/report", 1)])
        c.publish(f"{prefix}/_bench/ctl", word.encode(), qos=1).wait_for_publish(5)
        if collect:
            done.wait(timeout)
    finally:
        c.disconnect()
        c.loop_stop()
    return got


def command_floor(port: int, prefix: str, addresses: list[str], timeout: float = 120) -> dict[str, Any]:
    """Publish one `play` command to every address (what the adapter would send) and collect
    the acks, with bare paho: one publishing connection, one collecting connection."""
    cmd_id = uuid.uuid4().hex
    expires = protocol.utcnow().replace(microsecond=0)
    import datetime as _dt
    expires = expires + _dt.timedelta(minutes=10)
    acks = Counter(port, f"{prefix}/+/ack", "bench-floor-acks")
    pub = client("bench-floor-pub", port)
    try:
        acks.arm(len(addresses))
        content = {"id": "bench", "kind": "tts_text", "title": "Bão số 3", "body": "Thông báo khẩn: bão số 3",
                   "language": "vi", "media_uri": "http://127.0.0.1/bulletin.mp3", "sha256": None, "duration_s": 30}
        t0 = time.monotonic()
        sent_at = protocol.utcnow()
        infos = []
        for a in addresses:
            payload = protocol.encode(protocol.command_payload(cmd_id, "play", {}, "emergency", expires, content,
                                                               sent_at))
            infos.append(pub.publish(protocol.topic(prefix, a, protocol.CMD), payload, qos=1))
        t_pub = time.monotonic()
        for info in infos:
            info.wait_for_publish(max(0.1, timeout - (time.monotonic() - t0)))
        t_puback = time.monotonic()
        acks.done.wait(timeout)
        times = [t - t0 for t in acks.times]
    finally:
        pub.disconnect()
        pub.loop_stop()
        acks.close()
    return {"times": times, "publish_call_s": t_pub - t0, "all_puback_s": t_puback - t0}
