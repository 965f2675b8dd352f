"""The table printed at the end of a run and written into bench/README.md."""
from __future__ import annotations

from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent / "README.md"
GOALS = {"fanout": "10k: 99 % acked <= 2 s after submit returns; hub/floor <= 1.5x",
         "status": ">= 20,000 msg/s stored; hub/floor >= 0.5",
         "api": "p95 <= 50 ms at 100,000 devices; RSS <= 300 MB",
         "scheduler": "start jitter p99 <= 50 ms, 1,000 slots due in the same second"}


def _s(x: Any, unit: str = "s") -> str:
    return "—" if x is None else f"{x}{unit}"


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [f"Machine: {m['cores']} cores, {m['ram_mb']} MB RAM, {m['cpu']}, Python {m['python']}, {m['mosquitto']}",
             f"Load average (1/5/15 min): start {res['load'].get('start')}, end {res['load'].get('end')}"
             f"{' — QUICK run' if res.get('quick') else ''}",
             "",
             "| measure | hub | floor (same run) | hub/floor | goal | load during |",
             "|---|---|---|---|---|---|"]
    for r in res.get("fanout", []):
        h, f = r.get("hub", {}), r.get("floor", {})
        lines.append(
            f"| fan-out `play` emergency, N={r['n']:,}, {r['db']} | submit {_s(r.get('submit_s'))}; then 50 % "
            f"{_s(h.get('p50_s'))}, 99 % {_s(h.get('p99_s'))}, 100 % {_s(h.get('p100_s'))} "
            f"({h.get('acked')}/{r['n']} acked) | 50 % {_s(f.get('p50_s'))}, 99 % {_s(f.get('p99_s'))}, "
            f"100 % {_s(f.get('p100_s'))}; simulator {r.get('sim_ceiling', {}).get('acks_per_s')} acks/s | "
            f"p99 {_s(r.get('ratio_p99'), '×')}, p100 {_s(r.get('ratio_p100'), '×')} | "
            f"{GOALS['fanout'] if r['n'] >= 10000 else ''} | {r.get('load_during')} |")
    for r in res.get("status", []):
        h, f = r.get("hub", {}), r.get("floor", {})
        lines.append(
            f"| status ingest, {r['devices']:,} devices × {r['rounds']} = {r['messages']:,} msgs, {r['db']}, "
            f"{r.get('ingest_processes', 1)} ingest process{'es' if r.get('ingest_processes', 1) > 1 else ''} | "
            f"{_s(h.get('msg_per_s'), ' msg/s')} stored ({h.get('status_messages_stored')} reports applied; "
            f"{h.get('devices_showing_final_report')} devices show their last) | "
            f"{_s(f.get('msg_per_s'), ' msg/s')} (bare paho subscriber) | {_s(r.get('ratio'), '')} | "
            f"{GOALS['status']} | {r.get('load_during')} |")
    for r in res.get("scheduler", []) if isinstance(res.get("scheduler"), list) else []:
        h, f = r.get("hub", {}), r.get("floor", {})

        def j(x: dict[str, Any]) -> str:
            return (f"p50 {_s(x.get('p50_ms'), ' ms')}, p99 {_s(x.get('p99_ms'), ' ms')}, "
                    f"max {_s(x.get('max_ms'), ' ms')}")
        hs, hd, ha = h.get("sent", {}), h.get("at_device", {}), h.get("ack", {})
        fs, fd, fa = f.get("sent", {}), f.get("at_device", {}), f.get("ack", {})
        lines.append(
            f"| scheduler: {r['n']:,} scheduled `play` (one device each) due in the same second "
            f"(start_at 1 ms apart), submitted {_s(r.get('submitted_ahead_s'))} ahead, released "
            f"{_s(r.get('released_ahead_s'))} ahead; `hub scheduler` + 2 workers + ingest, {r['db']}, "
            f"{r.get('broker') or 'Mosquitto defaults'} | "
            f"start jitter: sent_at {j(hs)}; at device {j(hd)}; ack {j(ha)} "
            f"({r.get('states', {}).get('acked', 0)}/{r['n']} acked, {hd.get('n')} received, "
            f"{h.get('copies', {}).get('cmd')} copies) | "
            f"bare loop sleeping until each slot: publish {j(fs)}; at device {j(fd)}; ack {j(fa)} | "
            f"p99 at device {_s(r.get('ratio_p99_at_device'), '×')} | {GOALS['scheduler']} | {r.get('load_during')} |")
    for r in res.get("api", []):
        h, f = r.get("hub", {}), r.get("floor", {})
        lines.append(
            f"| `GET /api/devices?area=<commune>`, {r['devices']:,} devices, {r['threads']} threads × "
            f"{r['seconds']:g} s, {r['server']}, {r['db']} | p50 {_s(h.get('p50_ms'), ' ms')}, p95 {_s(h.get('p95_ms'), ' ms')}, "
            f"{h.get('rps')} req/s; peak RSS {_s(h.get('peak_rss_mb_per_worker_max'), ' MB')} per worker "
            f"({h.get('workers')} workers, {_s(h.get('rss_mb_total'), ' MB')} in all) | p50 {_s(f.get('p50_ms'), ' ms')}, "
            f"p95 {_s(f.get('p95_ms'), ' ms')}, {f.get('rps')} req/s (bare WSGI app, same gunicorn) | "
            f"p95 {_s(r.get('ratio_p95'), '×')} | {GOALS['api']} | {r.get('load_during')} |")
    if res.get("faults"):
        from bench.faults import rows
        lines += ["", "Time to 99 % terminal under each fault (the fault drill, tests/faults/drill.py, larger), "
                  "every row checked against what its device did:", "",
                  "| fault | set-up | 99 % terminal | rows by state | devices played | disagreements | where the fault "
                  "landed | load during |", "|---|---|---|---|---|---|---|---|", *rows(res["faults"])]
    fx = res.get("hub_fixes")
    if fx:
        lines += ["", f"Hub changes, old code path vs current, same run ({fx.get('unit')}):", "",
                  "| code path | before | after |", "|---|---|---|"]
        for k, v in fx.items():
            if isinstance(v, dict):
                a, b = list(v.values())[:2]
                lines.append(f"| {k} | {a} | {b} |")
    return "\n".join(lines)


def write_readme(res: dict[str, Any], table: str) -> None:
    text = README.read_text(encoding="utf-8") if README.exists() else ""
    start, end = "<!-- bench-table-start -->", "<!-- bench-table-end -->"
    block = f"{start}\nLast full run: {res['started']} ({res['wall_s']} s).\n\n{table}\n{end}"
    if start in text and end in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    README.write_text(text, encoding="utf-8")
