"""The bench's device simulator: few MQTT connections standing in for thousands of devices.

`python -m bench.sim ack ...`: one connection subscribed to `$share/<group>/<prefix>/+/cmd`; every
command is acked at once on `<prefix>/<address>/ack` (QoS 1), the same payload the plugin's
SimDevice sends. Run several processes with the same group and Mosquitto spreads the devices'
commands over them. No presence, no last will, no status: the bench only needs acks.

`python -m bench.sim status ...`: publishes `rounds` status reports for each address of its
shard as fast as the broker takes them (QoS 1, up to `inflight` unacknowledged); the last round
carries volume=99 so a reader can tell when the final report of every device is stored.

Both listen to `<prefix>/_bench/ctl` (not shared): `report` makes them publish their counters
on `<prefix>/_bench/report` and reset; `go` starts a status publisher; `quit` ends them.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from datetime import timedelta

import paho.mqtt.client as mqtt

from hub_mqtt_speaker import protocol


def _client(name: str, inflight: int) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{name}-{os.getpid()}", clean_session=True,
                    protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(inflight)
    c.max_queued_messages_set(0)
    return c


def run_ack(args: argparse.Namespace) -> None:
    prefix = args.prefix
    ctl, report = f"{prefix}/_bench/ctl", f"{prefix}/_bench/report"
    c = _client("bench-acker", args.inflight)
    stats = {"cmds": 0, "acks": 0, "first": None, "last": None}
    done = threading.Event()
    loads = json.loads
    dumps = json.dumps

    def on_connect(client, _u, _f, rc, _p):  # noqa: ANN001
        client.subscribe([(f"$share/{args.group}/{prefix}/+/cmd", 1), (ctl, 1)])

    def on_subscribe(client, _u, _mid, _rc, _p):  # noqa: ANN001
        print("ready", flush=True)

    def on_message(client, _u, msg):  # noqa: ANN001
        t = msg.topic
        if t == ctl:
            word = msg.payload.decode()
            if word == "report":
                client.publish(report, dumps({"pid": os.getpid(), "role": "ack", **stats}), qos=1)
                stats.update(cmds=0, acks=0, first=None, last=None)
            elif word == "quit":
                done.set()
            return
        now = time.monotonic()
        if stats["first"] is None:
            stats["first"] = now
        stats["cmds"] += 1
        cmd_id = loads(msg.payload)["id"]
        address = t[len(prefix) + 1:-4]
        payload = dumps({"id": cmd_id, "ok": True, "error": None, "state": {}}, separators=(",", ":")).encode()
        client.publish(f"{prefix}/{address}/ack", payload, qos=1)
        stats["acks"] += 1
        stats["last"] = time.monotonic()

    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    c.connect("127.0.0.1", args.port, keepalive=60)
    c.loop_start()
    done.wait(args.max_seconds)
    c.disconnect()
    c.loop_stop()


def run_status(args: argparse.Namespace) -> None:
    prefix = args.prefix
    ctl, report = f"{prefix}/_bench/ctl", f"{prefix}/_bench/report"
    c = _client("bench-status", args.inflight)
    go, done = threading.Event(), threading.Event()
    addrs = [f"{args.addr_prefix}-{i:06d}" for i in range(args.first, args.first + args.count)]
    published = threading.Semaphore(0)

    def on_connect(client, _u, _f, rc, _p):  # noqa: ANN001
        client.subscribe([(ctl, 1)])

    def on_subscribe(client, _u, _mid, _rc, _p):  # noqa: ANN001
        print("ready", flush=True)

    def on_message(client, _u, msg):  # noqa: ANN001
        word = msg.payload.decode()
        if word == "go":
            go.set()
        elif word == "quit":
            done.set()

    def on_publish(client, _u, mid, _rc, _p):  # noqa: ANN001
        published.release()

    c.on_connect, c.on_subscribe, c.on_message, c.on_publish = on_connect, on_subscribe, on_message, on_publish
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    c.connect("127.0.0.1", args.port, keepalive=60)
    c.loop_start()
    if go.wait(args.max_seconds) and not done.is_set():
        base = protocol.utcnow()
        topics = [f"{prefix}/{a}/status" for a in addrs]
        t0 = time.monotonic()
        n = 0
        for r in range(args.rounds):
            vol = 99 if r == args.rounds - 1 else r % 90
            # Each round is a later report, as from a real device's clock: with two ingest
            # processes the hub keeps the newest by time, not by arrival.
            ts = protocol.iso(base + timedelta(milliseconds=r))
            payload = json.dumps({"ts": ts, "online": True, "activity": "idle", "volume": vol, "firmware": "bench-1",
                                  "signal": {"network": "4g", "rssi_dbm": -70}}, separators=(",", ":")).encode()
            for t in topics:
                c.publish(t, payload, qos=1)
                n += 1
        t_queued = time.monotonic()
        got = 0
        deadline = time.monotonic() + args.max_seconds
        while got < n and time.monotonic() < deadline:
            if published.acquire(timeout=1):
                got += 1
        t1 = time.monotonic()
        c.publish(report, json.dumps({"pid": os.getpid(), "role": "status", "sent": n, "puback": got,
                                      "queue_s": t_queued - t0, "seconds": t1 - t0,
                                      "start": time.time() - (t1 - t0)}), qos=1).wait_for_publish(5)
        done.wait(args.max_seconds)
    c.disconnect()
    c.loop_stop()


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.sim")
    ap.add_argument("mode", choices=["ack", "status"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--group", default="benchsim")
    ap.add_argument("--inflight", type=int, default=0)  # 0: unbounded (paho rescans its queue per PUBACK when bounded)
    ap.add_argument("--addr-prefix", default="b")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--max-seconds", type=float, default=600)
    args = ap.parse_args()
    (run_ack if args.mode == "ack" else run_status)(args)


if __name__ == "__main__":
    main()
