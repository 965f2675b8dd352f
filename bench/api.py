"""API: GET /api/devices?area=<commune> with many registered devices, 4 client threads for a
fixed time against a werkzeug threaded server on loopback; p50/p95 latency and the server's
peak RSS; against a bare werkzeug app on the same server code and client (the floor)."""
from __future__ import annotations

import http.client
import random
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import (PY, Proc, free_port, hub_config, insert_devices, load_areas, loadavg, log, make_runtime,
                          pct, wait_port)


def _vm(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


def _load(port: int, paths: list[str], threads: int, seconds: float) -> dict[str, Any]:
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run(seed: int) -> None:
        rnd = random.Random(seed)
        mine: list[float] = []
        bad = 0
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop and len(mine) < 1_000_000:
            path = rnd.choice(paths)
            t = time.perf_counter()
            try:
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    bad += 1
                if r.getheader("Connection", "").lower() == "close" or r.version == 10:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine.append(time.perf_counter() - t)
        conn.close()
        with lock:
            lat.extend(mine)
            errors[0] += bad
    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 60)
    return {"requests": len(lat), "errors": errors[0], "rps": round(len(lat) / seconds, 1),
            "p50_ms": round(pct(lat, 50) * 1000, 2) if lat else None,
            "p95_ms": round(pct(lat, 95) * 1000, 2) if lat else None,
            "p99_ms": round(pct(lat, 99) * 1000, 2) if lat else None}


WORKERS = 2  # one per core; the README's production line uses -w 4 on bigger machines


def _serve(workdir: Path, name: str, factory: str, env: dict[str, str]) -> tuple[Proc, int]:
    port = free_port()
    gunicorn = str(Path(PY).with_name("gunicorn"))
    # A control socket of its own: gunicorn's default (~/.gunicorn/gunicorn.ctl) is shared by
    # every gunicorn of the user on the machine, so one would take over another's.
    p = Proc(name, [gunicorn, "-w", str(WORKERS), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
                    "--control-socket", str(workdir / f"{name}-gunicorn.ctl"),
                    f"bench.apiserver:{factory}()"], workdir, env)
    wait_port(port, 60)
    return p, port


def _rss(master: int) -> dict[str, int | None]:
    """Peak and current RSS of each gunicorn worker (children of the master) and of the master."""
    kids = []
    try:
        for t in Path(f"/proc/{master}/task").iterdir():
            kids += [int(x) for x in (t / "children").read_text().split()]
    except OSError:
        pass
    peaks = [_vm(k, "VmHWM") or 0 for k in kids]
    return {"workers": len(kids), "peak_rss_mb_per_worker_max": max(peaks) if peaks else None,
            "rss_mb_total": sum(_vm(k, "VmRSS") or 0 for k in kids) + (_vm(master, "VmRSS") or 0),
            "master_rss_mb": _vm(master, "VmRSS")}


def run(workdir: Path, devices: int, seconds: float, threads: int, db_url: str, label: str) -> dict[str, Any]:
    from hub.store.db import utcnow
    from hub.store.models import DeviceStatus
    out: dict[str, Any] = {"devices": devices, "threads": threads, "seconds": seconds, "db": label,
                           "server": f"gunicorn -w {WORKERS} (sync workers)", "load_before": loadavg()}
    d = workdir / f"api-{label}"
    d.mkdir()
    config = hub_config(d, db_url.format(dir=d), 1, "bench/api")
    rt = make_runtime(config)
    try:
        t = time.monotonic()
        communes = load_areas(rt)
        ids = insert_devices(rt, devices, communes)
        now = utcnow()
        rows = [{"device_id": i, "online": True, "activity": "idle", "volume": 50, "faults": [], "firmware": "bench-1",
                 "reported_at": now, "last_seen_at": now, "operating_state": "online", "state_since": now,
                 "consecutive_failures": 0} for i, _ in ids]
        with rt.db.engine.begin() as c:
            for i in range(0, len(rows), 5000):
                c.execute(DeviceStatus.__table__.insert(), rows[i:i + 5000])
        out["setup_s"] = round(time.monotonic() - t, 1)
        log(f"API {label}: {devices} devices over {len(communes)} communes registered in {out['setup_s']}s")
    finally:
        rt.close()
    paths = [f"/api/devices?area={c}" for c in communes]
    env = {"HUB_CONFIG": str(config)}
    hub, port = _serve(d, "api-hub", "hub_app", env)
    try:
        probe = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        probe.request("GET", paths[0])
        r = probe.getresponse()
        body = r.read()
        out["sample"] = {"status": r.status, "bytes": len(body), "x_pagination": r.getheader("X-Pagination")}
        probe.close()
        if r.status != 200:
            raise RuntimeError(f"GET {paths[0]} answered {r.status}: {body[:300]!r}\n{hub.output()[-2000:]}")
        _load(port, paths, 1, min(2.0, seconds))  # warm-up: imports, caches, connection pool
        out["load_during"] = loadavg()
        out["hub"] = _load(port, paths, threads, seconds)
        out["hub"].update(_rss(hub.pid))
    finally:
        hub.stop()
    floor, fport = _serve(d, "api-floor", "floor_app", {})
    try:
        out["floor"] = _load(fport, paths, threads, seconds)
        out["floor"].update(_rss(floor.pid))
    finally:
        floor.stop()
    out["load_after"] = loadavg()
    if out["hub"]["p95_ms"] and out["floor"]["p95_ms"]:
        out["ratio_p95"] = round(out["hub"]["p95_ms"] / out["floor"]["p95_ms"], 1)
    log(f"  hub {out['hub']}  floor {out['floor']}")
    return out
