"""`python -m bench [--quick] [--only fanout,status,scheduler,api,fixes,faults] [--no-postgres]`: every
figure next to its floor measured in the same run; results in bench/results/latest.json and
bench/README.md (a full run), latest-quick.json or latest-only-<sections>.json (the others)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import Any

from bench.common import RESULTS, dump, loadavg, log, machine, mosquitto, postgres_db, workdir

SQLITE = "sqlite:///{dir}/hub.sqlite3"
SECTIONS = "fanout,status,scheduler,api,fixes,faults"


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--quick", action="store_true", help="N=1,000 only, 10,000 devices for the API, shorter runs")
    ap.add_argument("--only", default=SECTIONS)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--api-seconds", type=float, default=None)
    ap.add_argument("--fault-devices", type=int, default=None, help="devices per fault scenario (1,000; quick 300)")
    args = ap.parse_args()
    only = set(args.only.split(","))
    started = time.time()
    res: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                           "quick": args.quick, "machine": machine(), "load": {"start": loadavg()}}
    sizes = [1000] if args.quick else [1000, 10000]
    from bench import api, fanout, status
    with workdir("run") as wd, postgres_db() if not args.no_postgres else _none() as pg_url:
        backends = [("sqlite", SQLITE)] + ([("postgresql", pg_url)] if pg_url else [])
        res["backends"] = [b for b, _ in backends]
        if "fanout" in only:
            res["fanout"] = []
            with mosquitto(wd) as port:
                prefix = f"bench/{uuid.uuid4().hex[:8]}"
                ackers = fanout.start_ackers(wd, port, prefix)
                try:
                    for label, url in backends:
                        for n in sizes:
                            if label != "sqlite":
                                _reset_pg(url)
                            res["fanout"].append(fanout.run_one(wd, port, prefix, n, url, label))
                finally:
                    for a in ackers:
                        a.stop()
            res["load"]["after_fanout"] = loadavg()
        if "status" in only:
            res["status"] = []
            devices, rounds = (1000, 10) if args.quick else (10000, 5)
            with mosquitto(wd) as port:
                for label, url in backends:
                    if label != "sqlite":
                        _reset_pg(url)
                    res["status"].append(status.run(wd, port, devices, rounds, url, label))
                # the scaling path the plugin already offers: 2 ingest processes, shared subscriptions
                res["status"].append(status.run(wd, port, devices, rounds, SQLITE, "sqlite", ingests=2))
            res["load"]["after_status"] = loadavg()
        if "scheduler" in only:
            from bench import scheduler
            res["scheduler"] = []
            # 1,000 slots in one second in both modes (the goal is stated for that load), on the
            # bench's broker as configured for the other sections and with TCP_NODELAY
            for nodelay in (False, True):
                with scheduler.broker(wd, nodelay) as port:
                    res["scheduler"].append(scheduler.run(
                        wd, port, f"bench/{uuid.uuid4().hex[:8]}", 1000, SQLITE, "sqlite",
                        "Mosquitto set_tcp_nodelay true" if nodelay else "Mosquitto defaults (Nagle on)"))
            res["load"]["after_scheduler"] = loadavg()
        if "api" in only:
            devices = 10_000 if args.quick else 100_000
            seconds = args.api_seconds or (4.0 if args.quick else 10.0)
            res["api"] = [api.run(wd, devices, seconds, 4, SQLITE, "sqlite")]
            res["load"]["after_api"] = loadavg()
        if "fixes" in only:
            from bench import fixes
            res["hub_fixes"] = fixes.run(wd, 10_000, 10_000 if args.quick else 100_000)
        if "faults" in only:
            from bench import faults
            res["faults"] = []
            n = args.fault_devices or (300 if args.quick else 1000)
            for label, url in backends:
                reset = (lambda url=url: _reset_pg(url)) if label != "sqlite" else None
                res["faults"] += faults.run(wd, n, url, label, reset)
            res["load"]["after_faults"] = loadavg()
    res["load"]["end"] = loadavg()
    res["wall_s"] = round(time.time() - started, 1)
    from bench.report import render, write_readme
    table = render(res)
    print("\n" + table)
    RESULTS.mkdir(exist_ok=True)
    full = only >= set(SECTIONS.split(","))
    # only a full run replaces the README's table and latest.json: a partial one would drop rows
    name = "latest-quick.json" if args.quick else "latest.json" if full else \
        f"latest-only-{'-'.join(sorted(only))}.json"
    dump(RESULTS / name, res)
    if not args.quick and full:
        write_readme(res, table)
    log(f"done in {res['wall_s']}s; results in {RESULTS / name}")
    return 0


class _none:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


def _reset_pg(url: str) -> None:
    """Each PostgreSQL run starts from an empty schema in the bench's own temporary database."""
    from sqlalchemy import create_engine, text
    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("DROP SCHEMA public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
    eng.dispose()


if __name__ == "__main__":
    sys.exit(main())
