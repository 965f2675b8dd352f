"""Scheduler: N scheduled `play` commands (slots), each to its own device, all due within the same
second (start_at = T0 + i·1 ms), through real `hub worker` ×2, `hub scheduler` and `hub ingest`
subprocesses. Start jitter is measured three ways, each against the slot's start_at:
* `sent`: the delivery's sent_at, when the worker handed the row to the MQTT adapter;
* `at device`: when a command for that slot reached a plain subscriber of `<prefix>/+/cmd` on the
  same broker (what a device would see);
* `ack`: when the simulated device's ack for it reached that subscriber.

The floor is a bare Python loop with paho that sleeps until each slot's start and publishes the
same payload to the same topic, measured by the same subscriber against the same simulators."""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench import mqttfloor
from bench.common import (PY, Proc, free_port, hub_config, insert_devices, load_areas, loadavg, log, make_runtime, pct,
                          purge_queues, wait_port, wait_until)
from bench.fanout import N_ACKERS, _content, _submit, _wait_done, start_ackers

SPREAD_S = 1.0  # the slots' start times are spread evenly over this span ("due in the same second")
CONTENT = {"id": "bench", "kind": "tts_text", "title": "Bản tin sáng", "body": "Bản tin sáng của xã",
           "language": "vi", "media_uri": "http://127.0.0.1/bulletin.mp3", "sha256": None, "duration_s": 30}


@contextlib.contextmanager
def broker(workdir: Path, nodelay: bool) -> Any:
    """The bench's Mosquitto (as bench.common.mosquitto), optionally with `set_tcp_nodelay true`.
    Mosquitto's default leaves Nagle's algorithm on: a PUBACK written while the previous one is
    not yet ACKed waits for the client's delayed ACK (40 ms on Linux). The hub's adapter waits
    for the PUBACKs of each call, so that stall shows in start jitter; the floor does not wait."""
    port = free_port()
    conf = workdir / f"mosquitto-{port}.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 0\nmax_inflight_messages 0\nlog_type error\nlog_dest stderr\n"
                    + ("set_tcp_nodelay true\n" if nodelay else ""))
    p = Proc(f"mosquitto-{port}", [os.environ.get("BENCH_MOSQUITTO", "/usr/sbin/mosquitto"), "-c", str(conf)],
             workdir)
    try:
        wait_port(port)
        yield port
    finally:
        p.stop()


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


class Observer:
    """A plain subscriber to every command and ack topic: first arrival time (wall clock) per
    (kind, command id), and how many arrived in all (a second copy would show double sending)."""

    def __init__(self, port: int, prefix: str) -> None:
        self.first: dict[tuple[str, str], float] = {}
        self.count = {"cmd": 0, "ack": 0}
        self._lock = threading.Lock()
        self.c = mqttfloor.client("bench-sched-observer", port)
        self.c.on_message = self._on
        mqttfloor.subscribe(self.c, [(f"{prefix}/+/cmd", 1), (f"{prefix}/+/ack", 1)])

    def _on(self, _c: Any, _u: Any, m: Any) -> None:
        t = time.time()
        kind = m.topic.rsplit("/", 1)[1]
        try:
            cid = json.loads(m.payload)["id"]
        except (ValueError, KeyError):
            return
        with self._lock:
            self.count[kind] = self.count.get(kind, 0) + 1
            self.first.setdefault((kind, cid), t)

    def reset(self) -> None:
        with self._lock:
            self.first.clear()
            self.count = {"cmd": 0, "ack": 0}

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def jitter_ms(pairs: list[tuple[float, float]]) -> dict[str, Any]:
    """pairs of (actual, due) epoch seconds → p50/p99/max/min of actual − due, in ms."""
    d = [(a - b) * 1000 for a, b in pairs]
    r = lambda x: None if x is None else round(x, 1)  # noqa: E731
    return {"n": len(d), "p50_ms": r(pct(d, 50)), "p99_ms": r(pct(d, 99)), "max_ms": r(max(d) if d else None),
            "min_ms": r(min(d) if d else None)}


def _observed(obs: Observer, due: dict[str, float]) -> dict[str, Any]:
    out = {}
    for kind, label in (("cmd", "at_device"), ("ack", "ack")):
        out[label] = jitter_ms([(obs.first[(kind, cid)], t) for cid, t in due.items() if (kind, cid) in obs.first])
    out["copies"] = dict(obs.count)
    return out


def floor(port: int, prefix: str, addresses: list[str], obs: Observer, lead_s: float = 2.0) -> dict[str, Any]:
    """Bare paho: payloads built first, then sleep until each slot's start and publish it."""
    pub = mqttfloor.client("bench-sched-floor", port)
    try:
        obs.reset()
        t0 = time.time() + lead_s
        expires = _utc(t0) + timedelta(minutes=10)
        from hub_mqtt_speaker import protocol
        slots = []
        for i, a in enumerate(addresses):
            cid = uuid.uuid4().hex
            start = t0 + SPREAD_S * i / len(addresses)
            payload = protocol.encode(protocol.command_payload(cid, "play", {"repeat": 1}, "normal", expires,
                                                               CONTENT, _utc(start)))
            slots.append((start, cid, protocol.topic(prefix, a, protocol.CMD), payload))
        published: list[tuple[float, float]] = []
        for start, _cid, topic, payload in slots:
            wait = start - time.time()
            if wait > 0:
                time.sleep(wait)
            published.append((time.time(), start))
            pub.publish(topic, payload, qos=1)
        due = {cid: start for start, cid, _, _ in slots}
        wait_until(lambda: sum(1 for cid in due if ("ack", cid) in obs.first) >= len(due), 60,
                   "floor acks")
        return {"sent": jitter_ms(published), **_observed(obs, due)}
    finally:
        pub.disconnect()
        pub.loop_stop()


def _procs(d: Path, config: Path) -> list[Proc]:
    env = {"HUB_CONFIG": str(config)}
    procs = [Proc("ingest", [PY, "-m", "hub.cli", "ingest"], d, env),
             Proc("scheduler", [PY, "-m", "hub.cli", "scheduler", "--name", "bench"], d, env)]
    procs += [Proc(f"worker{i}", [PY, "-m", "hub.cli", "worker", "--name", f"bench-{uuid.uuid4().hex[:8]}"], d, env)
              for i in range(2)]
    wait_until(lambda: "ingest running" in procs[0].output(), 30, "hub ingest to listen", procs)
    wait_until(lambda: "scheduler bench running" in procs[1].output(), 30, "hub scheduler to start", procs)
    wait_until(lambda: all("istening on" in p.output() for p in procs[2:]), 30, "hub workers to listen", procs)
    return procs


def run(workdir: Path, port: int, prefix: str, n: int, db_url: str, label: str,
        broker_note: str = "") -> dict[str, Any]:
    from hub.store.models import Command, Delivery
    out: dict[str, Any] = {"n": n, "db": label, "spread_s": SPREAD_S, "broker": broker_note,
                           "load_before": loadavg()}
    d = workdir / f"scheduler-{label}-{n}-{port}"
    d.mkdir()
    config = hub_config(d, db_url.format(dir=d), port, prefix)
    rt = make_runtime(config)
    out["lead_s"] = rt.settings.scheduler_lead_s
    ackers = start_ackers(d, port, prefix)
    obs = Observer(port, prefix)
    try:
        devices = insert_devices(rt, n, load_areas(rt))
        addresses = [a for _, a in devices]
        log(f"scheduler N={n}: floor (bare paho loop sleeping until each slot)")
        out["floor"] = floor(port, prefix, addresses, obs)
        log(f"  floor: {out['floor']}")
        procs = _procs(d, config)
        try:
            content = _content(rt)
            warm = _submit(rt, {"verb": "set_volume", "params": {"level": 50}, "priority": "normal",
                                "target": {"areas": ["80"]}})
            out["warmup"] = _wait_done(rt, warm.command.id, n, 120, procs)
            # Submitting N commands one by one takes a while on this machine: measure the pace on
            # the first 20, then put the slots far enough ahead that all are in before the release.
            t_sub = time.monotonic()
            probe_start = datetime.now(timezone.utc) + timedelta(hours=1)
            subs = [_submit(rt, {"verb": "play", "content_id": content, "priority": "normal",
                                 "target": {"devices": [devices[i][0]]}, "start_at": probe_start.isoformat()})
                    for i in range(min(20, n))]
            pace = (time.monotonic() - t_sub) / len(subs)
            t0 = datetime.now(timezone.utc) + timedelta(seconds=pace * n * 2 + rt.settings.scheduler_lead_s + 5)
            from hub.access.actors import LOCAL_ADMIN
            from hub.delivery.dispatch import cancel
            for s in subs:  # the probes only measured the pace
                cancel(rt, LOCAL_ADMIN, s.command.id)
            obs.reset()
            out["load_during"] = loadavg()
            starts = {}
            t_sub = time.monotonic()
            for i, (dev, _a) in enumerate(devices):
                start = t0 + timedelta(seconds=SPREAD_S * i / n)
                sub = _submit(rt, {"verb": "play", "content_id": content, "priority": "normal",
                                   "target": {"devices": [dev]}, "start_at": start.isoformat()})
                starts[sub.command.id] = start
            out["submit_s"] = round(time.monotonic() - t_sub, 2)
            margin = (t0 - datetime.now(timezone.utc)).total_seconds()
            out["submitted_ahead_s"] = round(margin, 2)
            log(f"  {n} commands submitted in {out['submit_s']} s; first slot in {margin:.1f} s")
            if margin < rt.settings.scheduler_lead_s:
                log("  WARNING: submission ran into the lead time; jitter includes the late release")
            states: dict[str, int] = {}

            def done() -> bool:
                nonlocal states
                with rt.db.session() as s:
                    totals: dict[str, int] = {}
                    rows = s.execute(select(Delivery.state, Delivery.sent_at)
                                     .where(Delivery.command_id.in_(list(starts)))).all()
                    for st, _ in rows:
                        totals[st] = totals.get(st, 0) + 1
                states = totals
                # the worker records sent_at after the dense part of the wave: acks may come first
                recorded = sum(1 for _, at in rows if at is not None)
                ended = totals.get("acked", 0) + totals.get("failed", 0) + totals.get("expired", 0)
                return ended >= n and (recorded >= n or totals.get("acked", 0) < n)
            wait_until(done, margin + 120, "scheduled commands to finish", procs, step=0.5)
            out["load_after"] = loadavg()
            out["states"] = states
            with rt.db.session() as s:
                sent = s.execute(select(Delivery.command_id, Delivery.sent_at)
                                 .where(Delivery.command_id.in_(list(starts)))).all()
                released = s.execute(select(Command.id, Command.released_at)
                                     .where(Command.id.in_(list(starts)))).all()
            # the smallest head start a worker got: start_at − released_at, over the commands
            leads = [(starts[cid] - r).total_seconds() for cid, r in released if r is not None]
            out["released_ahead_s"] = round(min(leads), 2) if leads else None
            due = {cid: st.timestamp() for cid, st in starts.items()}
            hub = {"sent": jitter_ms([(s_at.timestamp(), due[cid]) for cid, s_at in sent if s_at])}
            hub.update(_observed(obs, due))
            out["hub"] = hub
            f, h = out["floor"], out["hub"]
            out["ratio_p99_at_device"] = round(h["at_device"]["p99_ms"] / f["at_device"]["p99_ms"], 2) \
                if h["at_device"]["p99_ms"] and f["at_device"]["p99_ms"] else None
            log(f"  hub: {h}; states {states}")
            sched_log = procs[1].output()
            out["scheduler_log"] = [ln for ln in sched_log.splitlines() if "released" in ln][-3:]
        finally:
            for p in procs:
                p.stop()
    finally:
        obs.close()
        for a in ackers:
            a.stop()
        purge_queues(rt)
        rt.close()
    return out
