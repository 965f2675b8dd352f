"""Fan-out: one emergency `play` to N simulated MQTT devices through real hub processes
(2 workers, 1 ingest), against the bare-paho floor measured minutes before on the same broker
with the same simulators."""
from __future__ import annotations

import os
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench import mqttfloor
from bench.common import (PY, Proc, hub_config, insert_devices, load_areas, loadavg, log, make_runtime, pct,
                          purge_queues, wait_until)

N_ACKERS = int(os.environ.get("BENCH_ACKERS", "2"))


def start_ackers(workdir: Path, port: int, prefix: str, n: int = N_ACKERS) -> list[Proc]:
    procs = [Proc(f"acker{i}", [PY, "-m", "bench.sim", "ack", "--port", str(port), "--prefix", prefix,
                                "--max-seconds", "900"], workdir) for i in range(n)]
    wait_until(lambda: all("ready" in p.output() for p in procs), 15, "bench ackers to subscribe", procs)
    return procs


def summarise(times: list[float], n: int) -> dict[str, Any]:
    return {"acked": len(times), "of": n, "p50_s": _r(pct(times, 50)), "p99_s": _r(pct(times, 99)),
            "p100_s": _r(max(times) if len(times) >= n else None)}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def sim_ceiling(port: int, prefix: str) -> dict[str, Any]:
    """What the ackers did in the last phase: commands in, acks out, first command to last ack."""
    reports = mqttfloor.control(port, prefix, "report", collect=N_ACKERS)
    acks = sum(r["acks"] for r in reports)
    firsts = [r["first"] for r in reports if r["first"] is not None]
    lasts = [r["last"] for r in reports if r["last"] is not None]
    span = (max(lasts) - min(firsts)) if firsts and lasts else None
    return {"processes": len(reports), "acks": acks, "span_s": _r(span),
            "acks_per_s": round(acks / span) if span else None,
            "per_process": [r["acks"] for r in reports]}


def _hub_procs(workdir: Path, config: Path, profile_dir: str | None) -> list[Proc]:
    env = {"HUB_CONFIG": str(config)}

    def cmd(name: str, args: list[str]) -> list[str]:
        if profile_dir:
            return [PY, "-m", "cProfile", "-o", f"{profile_dir}/{name}.prof", "-m", "hub.cli", *args]
        return [PY, "-m", "hub.cli", *args]
    procs = [Proc("ingest", cmd("ingest", ["ingest"]), workdir, env)]
    procs += [Proc(f"worker{i}", cmd(f"worker{i}", ["worker", "--name", f"bench-{uuid.uuid4().hex[:8]}"]), workdir, env)
              for i in range(2)]
    wait_until(lambda: "ingest running" in procs[0].output(), 30, "hub ingest to listen", procs)
    wait_until(lambda: all("Listening on" in p.output() or "listening on" in p.output() for p in procs[1:]), 30,
               "hub workers to listen", procs)
    return procs


def _pyspy(workdir: Path, procs: list[Proc], tag: str = "fanout-") -> list[Proc]:
    """With BENCH_PYSPY=<py-spy binary>, sample every hub process (all threads) during the measured
    phase; collapsed stacks go to bench/results/profile-<proc>.txt."""
    exe = os.environ.get("BENCH_PYSPY")
    if not exe:
        return []
    from bench.common import RESULTS
    RESULTS.mkdir(exist_ok=True)
    return [Proc(f"pyspy-{p.name}", [exe, "record", "--pid", str(p.pid), "--rate", "200", "--format", "raw",
                                      "--threads", "--nonblocking", "--duration", "60",
                                      "-o", str(RESULTS / f"profile-{tag}{p.name}.txt")], workdir) for p in procs]


def _content(rt: Any) -> str:
    from hub.store.db import utcnow
    from hub.store.models import Content
    with rt.db.session() as s:
        c = Content(id=uuid.uuid4().hex, title="Bão số 3", kind="tts_text", language="vi",
                    body="Thông báo khẩn: bão số 3", media={"uri": "http://127.0.0.1/bulletin.mp3", "duration_s": 30},
                    priority="emergency", created_by="bench", created_at=utcnow())
        s.add(c)
    return c.id


def _submit(rt: Any, raw: dict[str, Any]) -> Any:
    from hub.access.actors import LOCAL_ADMIN
    from hub.delivery.dispatch import submit
    from hub.schemas import CommandSchema
    return submit(rt, LOCAL_ADMIN, CommandSchema().load(raw))


def _wait_done(rt: Any, cid: str, n: int, timeout: float, procs: list[Proc]) -> dict[str, int]:
    from hub.delivery.dispatch import counts
    last: dict[str, int] = {}

    def done() -> bool:
        nonlocal last
        with rt.db.session() as s:
            last = counts(s, cid)
        return last["queued"] + last["sent"] == 0
    try:
        wait_until(done, timeout, f"command {cid} to finish", procs, step=0.1)
    except TimeoutError:
        pass
    return {k: v for k, v in last.items() if v}


def run_one(workdir: Path, port: int, prefix: str, n: int, db_url: str, label: str,
            profile_dir: str | None = None) -> dict[str, Any]:
    from hub.store.models import Delivery
    out: dict[str, Any] = {"n": n, "db": label, "load_before": loadavg()}
    d = workdir / f"{label}-{n}"
    d.mkdir()
    config = hub_config(d, db_url.format(dir=d), port, prefix)
    rt = make_runtime(config)
    try:
        communes = load_areas(rt)
        devices = insert_devices(rt, n, communes)
        addresses = [a for _, a in devices]
        # -- the floor: bare paho, same broker, same simulators, same payloads ---------------------
        log(f"fan-out {label} N={n}: floor (bare paho)")
        mqttfloor.control(port, prefix, "report", collect=N_ACKERS)  # reset the ackers' counters
        floor = mqttfloor.command_floor(port, prefix, addresses)
        out["floor"] = {**summarise(floor["times"], n), "publish_call_s": _r(floor["publish_call_s"]),
                        "all_puback_s": _r(floor["all_puback_s"])}
        out["sim_ceiling"] = sim_ceiling(port, prefix)
        log(f"  floor: {out['floor']}  simulator: {out['sim_ceiling']['acks_per_s']} acks/s")
        # -- the hub: 2 workers + 1 ingest as processes ----------------------------------------------
        procs = _hub_procs(d, config, profile_dir)
        try:
            content = _content(rt)
            # Warm-up: opens each worker's MQTT connection and gives every device a status row,
            # as a running province has; not measured.
            warm = _submit(rt, {"verb": "set_volume", "params": {"level": 50}, "priority": "normal",
                                "target": {"areas": ["80"]}})
            out["warmup"] = _wait_done(rt, warm.command.id, n, 120, procs)
            log(f"  warm-up: {out['warmup']}")
            out["load_during"] = loadavg()
            spies = _pyspy(d, procs)
            t_start = time.monotonic()
            sub = _submit(rt, {"verb": "play", "content_id": content, "priority": "emergency",
                               "target": {"areas": ["80"]}})
            t_ret_mono = time.monotonic()
            from hub.store.db import utcnow
            t_ret: datetime = utcnow()
            out["submit_s"] = _r(t_ret_mono - t_start)
            final = _wait_done(rt, sub.command.id, n, 120, procs)
            for spy in spies:
                spy.stop(sig=2)
            out["states"] = final
            with rt.db.session() as s:
                fins = s.execute(select(Delivery.finished_at).where(Delivery.command_id == sub.command.id,
                                                                    Delivery.state == "acked")).scalars().all()
                sent = s.execute(select(func.max(Delivery.sent_at)).where(
                    Delivery.command_id == sub.command.id)).scalar()
            times = [(f - t_ret).total_seconds() for f in fins]
            out["hub"] = summarise(times, n)
            out["hub"]["last_sent_s"] = _r((sent - t_ret).total_seconds()) if sent else None
            out["load_after"] = loadavg()
            f, h = out["floor"], out["hub"]
            out["ratio_p99"] = round(h["p99_s"] / f["p99_s"], 2) if h["p99_s"] and f["p99_s"] else None
            out["ratio_p100"] = round(h["p100_s"] / f["p100_s"], 2) if h["p100_s"] and f["p100_s"] else None
            log(f"  hub: submit {out['submit_s']}s, {h}, states {final}; ratio p99 {out['ratio_p99']}")
        finally:
            for p in procs:
                p.stop()
            out["ingest_stats"] = next((ln for ln in procs[0].output().splitlines() if "ingest stopped" in ln), None)
            mqttfloor.control(port, prefix, "report", collect=N_ACKERS)  # reset after the hub phase
    finally:
        purge_queues(rt)
        rt.close()
    return out
