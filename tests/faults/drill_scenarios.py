"""The fault drill's scenarios (machinery in tests/faults/drill.py): each takes a started Drill,
injects its fault during an emergency fan-out and returns the commands to judge, as
(command id, must reach every device), with notes on where the fault landed."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.faults.drill import DEVICES, NOT_LANDED, TTL_S, Drill, Verdict, database

Outcome = tuple[list[tuple[str, bool]], list[str]]


@dataclass
class Report:
    scenario: str
    db: str
    devices: int
    ttl_s: float
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        head = f"[drill {self.scenario}] {self.db}, {self.devices} devices, ttl {self.ttl_s:g}s"
        body = [f"  command {i + 1}: {v.line()}" for i, v in enumerate(self.verdicts)]
        return "\n".join([head, *body, *(f"  note: {n}" for n in self.notes)])

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "db": self.db, "devices": self.devices, "ttl_s": self.ttl_s,
                "notes": [n.split("\n")[0] for n in self.notes], "problems": self.problems(),
                "commands": [{"states": dict(v.states), "received": v.received, "played": v.played,
                              "played_but_not_acked": v.played_not_acked, "acked_not_played": v.acked_not_played,
                              "missed": v.missed, "repeats": v.repeats, "played_twice": v.played_twice, "late": v.late,
                              "t99_terminal_s": None if v.t99_s is None else round(v.t99_s, 2)}
                             for v in self.verdicts]}

    def problems(self) -> list[str]:
        out = [n for n in self.notes if n.startswith(NOT_LANDED)]  # a drill that proved nothing fails
        for i, v in enumerate(self.verdicts):
            tag = f"command {i + 1}"
            wrong = v.played_not_acked.get("expired", 0) + v.played_not_acked.get("superseded", 0)
            if wrong:
                out.append(f"{tag}: {wrong} rows expired/superseded for devices that played it")
            if v.acked_not_played:
                out.append(f"{tag}: {v.acked_not_played} rows acked for devices that never acted on it")
            if v.missed:
                out.append(f"{tag}: {v.missed} reachable devices never received it")
            if v.played_twice:
                out.append(f"{tag}: {v.played_twice} devices acted on it twice")
            if v.late:
                out.append(f"{tag}: {v.late} rows not terminal within the TTL")
        return out


def worker_kill(d: Drill) -> Outcome:
    """kill -9 of a worker inside a batch of an emergency fan-out (a database stall holds it
    there: it has taken its rows and published or is about to); the other worker goes on."""
    workers = [p for p in d.live() if p.name.startswith("worker")]
    for p in workers:  # held for a moment so that no batch starts before the stall
        os.killpg(p.p.pid, signal.SIGSTOP)
    try:
        cid = d.play()
    except BaseException:
        for p in workers:
            os.killpg(p.p.pid, signal.SIGCONT)
        raise
    with d.slow_database():
        for p in workers:
            os.killpg(p.p.pid, signal.SIGCONT)
        victim = d.busy_worker(timeout=10)
        if victim is None:
            return [(cid, True)], [f"{NOT_LANDED}: no worker was seen running a batch, nothing killed"]
        time.sleep(0.5)  # it reaches the stalled write
        c = d.counts(cid)
        d.kill9(victim)
    return [(cid, True)], [f"killed {victim} inside a batch (database stalled), rows {dict(c)}"]


def ingest_kill(d: Drill) -> Outcome:
    """kill -9 of the ingest while devices' acks stream in and its writes stall (a database
    stall); a new ingest 3 s later."""
    cid = d.play()
    d.wait_for("first rows sent", lambda: d.started_sending(cid))
    with d.slow_database():
        if not d.wait_for("devices to answer", lambda: d.answered(cid) > 0, timeout=10):
            return [(cid, True)], [f"{NOT_LANDED}: no device answered, ingest not killed"]
        time.sleep(0.5)  # their acks reach the ingest, which cannot store them yet
        c, heard = d.counts(cid), d.answered(cid)
        d.kill9("ingest-1")
    time.sleep(3.0)
    d.spawn("ingest")
    return [(cid, True)], [f"killed ingest-1 with {heard} devices' acks out and rows {dict(c)} "
                           "(database stalled); new ingest 3 s later"]


def broker_restart(d: Drill) -> Outcome:
    """Mosquitto stopped (it saves its persistence) while a worker publishes the first batches,
    back 3 s later."""
    cid = d.play()
    d.wait_for("a batch under way", lambda: d.busy_worker(timeout=0.05) is not None or d.started_sending(cid))
    c = d.counts(cid)
    d.broker.restart(down_s=3.0)
    return [(cid, True)], [f"broker stopped with rows {dict(c)}, back 3 s later"]


def supersede_restart(d: Drill) -> Outcome:
    """Three emergency plays (same slot) in quick succession while worker-1 restarts (SIGTERM,
    warm shutdown, a new worker). The broker stalls for a second from the first batch on, so
    batches of the first command are on the wire — published, not yet confirmed — when the next
    commands come. Only the last must reach every device; the earlier ones may be superseded,
    never on a device that played them."""
    first = d.play()
    d.busy_worker(timeout=5)
    d.broker.pause()
    try:
        d.procs["worker-1"].p.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # the workers publish the next batches into the stalled broker
        second = d.play()
        time.sleep(0.2)
        third = d.play()
        time.sleep(0.5)
    finally:
        d.broker.resume()
    note = "broker stalled 1 s from the first batch on; worker-1 restarted during the three commands"
    try:  # a warm shutdown ends the running job first
        d.procs["worker-1"].p.wait(90)
    except subprocess.TimeoutExpired:
        d.kill9("worker-1")
        note += " (it did not stop within 90 s of SIGTERM: killed)"
    d.spawn("worker")
    return [(first, False), (second, False), (third, True)], [note]


SCENARIO_FUNCS: dict[str, Callable[[Drill], Outcome]] = {
    "worker_kill": worker_kill, "ingest_kill": ingest_kill, "broker_restart": broker_restart,
    "supersede_restart": supersede_restart,
}


def run_scenario(name: str, workdir: Path, devices: int = DEVICES, ttl_s: float = TTL_S,
                 db: tuple[str, str] | None = None) -> Report:
    """Set up, inject the fault, wait for every row to be terminal (TTL + slack at most), judge.
    `db` is (url, label) of an empty database; by default PostgreSQL when it answers, else SQLite."""
    with (contextlib.nullcontext(db) if db else database(workdir)) as (url, label), \
            Drill(workdir, url, label, devices, ttl_s) as d:
        report = Report(name, label, devices, ttl_s)
        commands, report.notes = SCENARIO_FUNCS[name](d)
        for cid, _ in commands:
            d.wait_terminal(cid, ttl_s + 15)
        time.sleep(1.0)  # a last ack or status on its way to the fleet's records
        report.verdicts = [d.verdict(cid, must_arrive=must) for cid, must in commands]
        dead = [p.name for p in d.procs.values() if not p.alive() and p.p.returncode not in (0, -9, -15)]
        if dead:
            report.notes.append(f"exited on their own: {dead}\n{d.logs()}")
        return report
