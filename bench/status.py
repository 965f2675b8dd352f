"""Status ingest: simulated devices publish status as fast as the broker carries it; how many
messages per second the hub's ingest stores (reflected in device_status rows), against a bare
paho subscriber on the same broker fed by the same publishers."""
from __future__ import annotations

import ast
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench import mqttfloor
from bench.common import (PY, Proc, hub_config, insert_devices, load_areas, loadavg, log, make_runtime,
                          wait_until)

N_PUBLISHERS = 2


def _publishers(workdir: Path, port: int, prefix: str, devices: int, rounds: int, tag: str) -> list[Proc]:
    share = devices // N_PUBLISHERS
    procs = []
    for i in range(N_PUBLISHERS):
        first = i * share
        count = share if i < N_PUBLISHERS - 1 else devices - first
        procs.append(Proc(f"status-{tag}-{i}", [PY, "-m", "bench.sim", "status", "--port", str(port), "--prefix",
                                                 prefix, "--first", str(first), "--count", str(count), "--rounds",
                                                 str(rounds), "--max-seconds", "300"], workdir))
    wait_until(lambda: all("ready" in p.output() for p in procs), 15, "status publishers to connect", procs)
    return procs


def _go(port: int, prefix: str) -> None:
    mqttfloor.control(port, prefix, "go")


def _finish(port: int, prefix: str, procs: list[Proc]) -> list[dict[str, Any]]:
    reports = mqttfloor.control(port, prefix, "quit", collect=0)
    for p in procs:
        p.stop()
    return reports


def run(workdir: Path, port: int, devices: int, rounds: int, db_url: str, label: str,
        ingests: int = 1) -> dict[str, Any]:
    from hub.store.models import DeviceStatus
    prefix = f"bench/st{uuid.uuid4().hex[:6]}"
    total = devices * rounds
    out: dict[str, Any] = {"devices": devices, "rounds": rounds, "messages": total, "db": label,
                           "ingest_processes": ingests, "load_before": loadavg()}
    d = workdir / f"status-{label}-{ingests}"
    d.mkdir()
    config = hub_config(d, db_url.format(dir=d), port, prefix)
    if ingests > 1:  # the plugin's shared subscriptions spread acks and status over the processes
        import yaml
        cfg = yaml.safe_load(config.read_text())
        cfg["plugins"]["mqtt_speaker"]["shared_group"] = "bench-ingest"
        config.write_text(yaml.safe_dump(cfg))
    rt = make_runtime(config)
    try:
        insert_devices(rt, devices, load_areas(rt))
        # -- floor: bare paho subscriber --------------------------------------------------------
        log(f"status ingest {label}: floor (bare paho subscriber), {total} messages")
        counter = mqttfloor.Counter(port, f"{prefix}/+/status", "bench-status-floor")
        pubs = _publishers(d, port, prefix, devices, rounds, "floor")
        counter.arm(total)
        t0 = time.monotonic()
        _go(port, prefix)
        counter.done.wait(120)
        got = len(counter.times)
        span = (counter.times[-1] - t0) if counter.times else None
        counter.close()
        _finish(port, prefix, pubs)
        out["floor"] = {"received": got, "seconds": round(span, 3) if span else None,
                        "msg_per_s": round(got / span) if span else None}
        log(f"  floor: {out['floor']}")
        # -- the hub's ingest process -------------------------------------------------------------
        procs = [Proc(f"ingest{i}", [PY, "-m", "hub.cli", "ingest"], d, {"HUB_CONFIG": str(config)})
                 for i in range(ingests)]
        ingest = procs[0]
        try:
            wait_until(lambda: all("ingest running" in p.output() for p in procs), 30, "hub ingest to listen", procs)
            # Warm-up: one report per device so every device has its status row, as in a running
            # province (the first report of a device also records its online transition).
            pubs = _publishers(d, port, prefix, devices, 1, "warm")
            _go(port, prefix)

            def reflected(volume: int) -> bool:
                with rt.db.session() as s:
                    return s.scalar(select(func.count()).select_from(DeviceStatus)
                                    .where(DeviceStatus.volume == volume)) >= devices
            wait_until(lambda: reflected(99), 120, "warm-up status to be stored", procs, step=0.1)
            _finish(port, prefix, pubs)
            with rt.db.session() as s:  # so that the measured run's final volume=99 is news
                s.execute(DeviceStatus.__table__.update().values(volume=0))
            pubs = _publishers(d, port, prefix, devices, rounds, "hub")
            out["load_during"] = loadavg()
            from bench.fanout import _pyspy
            spies = _pyspy(d, procs, "status-")
            t0 = time.monotonic()
            _go(port, prefix)
            # Done when every device shows its final report (the last round carries volume=99).
            def final_rows() -> int:
                with rt.db.session() as s:
                    return s.scalar(select(func.count()).select_from(DeviceStatus)
                                    .where(DeviceStatus.volume == 99)) or 0
            last, last_change, span = -1, time.monotonic(), None
            deadline = t0 + 180
            while time.monotonic() < deadline:
                n = final_rows()
                now = time.monotonic()
                if n != last:
                    last, last_change = n, now
                if n >= devices:
                    span = now - t0
                    break
                # one process applies a device's reports in order: wait for all of them. Several
                # may apply them out of order (a stale report last): stop when nothing moves for 10 s.
                if ingests > 1 and n > 0 and now - last_change > 10:
                    span = last_change - t0
                    break
                if not all(p.alive() for p in procs):
                    break
                time.sleep(0.05)
            out["final_rows"] = last
            out["load_after"] = loadavg()
            for spy in spies:
                spy.stop(sig=2)
            pub_reports = mqttfloor.control(port, prefix, "report", collect=0)
            _finish(port, prefix, pubs)
        finally:
            for p in procs:
                p.stop()
        stats: dict[str, int] = {}
        for p in procs:
            line = next((ln for ln in p.output().splitlines() if "ingest stopped" in ln), "")
            try:
                one = ast.literal_eval(line.split("ingest stopped:", 1)[1].strip()) if line else {}
            except (ValueError, SyntaxError):
                one = {}
            for k, v in one.items():
                stats[k] = stats.get(k, 0) + v
        stored = stats.get("status", 0) - devices  # minus the warm-up round
        out["hub"] = {"seconds": round(span, 3) if span else None,
                      "msg_per_s": round(total / span) if span else None,
                      "status_messages_stored": stored,
                      # of those, written as part of a newer report of the same device in the same batch
                      "coalesced_in_batch": stats.get("status_coalesced", 0),
                      # ignored as older than the stored report (several ingest processes)
                      "stale_ignored": stats.get("status_stale", 0),
                      "devices_showing_final_report": out.get("final_rows")}
        out["ingest_stats"] = stats
        if out["hub"]["msg_per_s"] and out["floor"]["msg_per_s"]:
            out["ratio"] = round(out["hub"]["msg_per_s"] / out["floor"]["msg_per_s"], 2)
        log(f"  hub ingest: {out['hub']}, ratio {out.get('ratio')}")
        del pub_reports
    finally:
        rt.close()
    return out
