"""Every state a delivery row shows must stay true under faults (the fault drill's findings):
a row a worker loaded is not `superseded`; a narrower issuer never supersedes a wider one; an ack
ends only a row the device was handed; a device that comes back gets what it missed, and acts on
it once; an emergency whose worker was killed mid-send reaches its devices within 25 s."""
from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from datetime import timedelta

import pytest
from rq import Queue
from rq.registry import StartedJobRegistry
from sqlalchemy import select

from hub.access.actors import LOCAL_ADMIN, Actor
from hub.store.db import utcnow
from hub.delivery.dispatch import submit
from hub.delivery.ingest import Ingest
from hub.delivery.jobs import send_batch
from hub.store.models import Content, Delivery
from hub.fleet.registry import upsert_device
from hub.schemas import CommandSchema
from hub.vendor import Ack
from hub.delivery.worker import make_worker
from tests.support.fault_services import dump_logs, fault_hub, own_broker, own_redis  # noqa: F401 — fixtures
from tests.support.processes import wait_until
from tests.support.loopback_vendor import LoopbackAdapter

COMMUNE_OPERATOR = Actor(name="commune-operator", roles=frozenset({"operator"}), areas=frozenset({"27694"}))
PROVINCE_OPERATOR = Actor(name="province-operator", roles=frozenset({"operator"}), areas=frozenset({"80"}))


def add(rt, *addresses: str, area: str = "27694") -> None:
    with rt.db.session() as s:
        for a in addresses:
            upsert_device(s, rt.plugins, {"id": a.upper(), "vendor": "loopback", "kind": "speaker",
                                          "area_code": area, "address": a, "tags": []})


def send(rt, raw: dict, actor: Actor = LOCAL_ADMIN):
    return submit(rt, actor, CommandSchema().load(raw))


def rows(rt, cid: str) -> dict[str, Delivery]:
    with rt.db.session() as s:
        return {d.device_id: d for d in s.scalars(select(Delivery).where(Delivery.command_id == cid))}


def states(rt, cid: str) -> dict[str, str]:
    return {dev: d.state for dev, d in rows(rt, cid).items()}


def content(rt, duration_s: float = 3.0) -> str:
    cid = uuid.uuid4().hex
    with rt.db.session() as s:
        s.add(Content(id=cid, title="Cảnh báo lũ", kind="audio_file", language="vi", priority="emergency",
                      media={"uri": "http://127.0.0.1:9/lu.mp3", "duration_s": duration_s},
                      created_by="test", created_at=utcnow()))
    return cid


def in_an_hour() -> str:
    return (utcnow() + timedelta(hours=1)).replace(microsecond=0).isoformat()


# -- 1. supersede: never a row a worker holds, never from a narrower issuer ------------------------------------
def test_rows_a_worker_loaded_are_not_superseded_and_their_acks_count(hub, monkeypatch) -> None:
    """A newer command for the same slot arrives while the worker is publishing the older one:
    the older rows were handed to the devices, so they go on to `sent` and take the devices' acks
    (before the fix they ended `superseded` and the acks were ignored)."""
    add(hub, "pending-1", "pending-2")
    first = send(hub, {"verb": "set_volume", "params": {"level": 10}, "target": {"areas": ["27694"]}})
    ids = [d.id for d in rows(hub, first.command.id).values()]
    inside, release = threading.Event(), threading.Event()
    real_send = LoopbackAdapter.send

    def publishing(self, batch):  # noqa: ANN001, ANN202 — the transport is busy with the batch
        inside.set()
        release.wait(30)
        return real_send(self, batch)

    monkeypatch.setattr(LoopbackAdapter, "send", publishing)
    job = threading.Thread(target=send_batch, args=(first.command.id, "loopback", ids), kwargs={"rt": hub})
    job.start()
    try:
        assert inside.wait(30), "the send job never reached the transport"
        second = send(hub, {"verb": "set_volume", "params": {"level": 20}, "target": {"areas": ["27694"]}})
    finally:
        release.set()
        job.join(30)
    assert states(hub, first.command.id) == {"PENDING-1": "sent", "PENDING-2": "sent"}
    assert states(hub, second.command.id) == {"PENDING-1": "queued", "PENDING-2": "queued"}
    ing = Ingest(hub, vendors=[])
    for a in ("pending-1", "pending-2"):
        ing.sink.ack("loopback", a, Ack(first.command.id, True))
    ing.flush()
    assert states(hub, first.command.id) == {"PENDING-1": "acked", "PENDING-2": "acked"}
    # rows nobody loaded yet still give way, as before
    third = send(hub, {"verb": "set_volume", "params": {"level": 30}, "target": {"areas": ["27694"]}})
    assert set(states(hub, second.command.id).values()) == {"superseded"}
    assert set(states(hub, third.command.id).values()) == {"queued"}


def test_a_narrower_issuer_never_supersedes_a_wider_ones_command(hub) -> None:
    """The province schedules an emergency for 07:00; a commune operator schedules a `stop` for
    the same instant in that commune. The province's emergency stands (before the fix the
    commune's stop superseded it). The province correcting its own bulletin still replaces the
    commune's, and an operator replaces their own."""
    add(hub, "pending-1", "pending-2")
    add(hub, "pending-3", area="28099")
    start = in_an_hour()
    alert = send(hub, {"verb": "play", "content_id": content(hub), "priority": "emergency", "start_at": start,
                       "target": {"areas": ["80"]}}, PROVINCE_OPERATOR)
    local_stop = send(hub, {"verb": "stop", "priority": "emergency", "start_at": start,
                            "target": {"areas": ["27694"]}}, COMMUNE_OPERATOR)
    assert set(states(hub, alert.command.id).values()) == {"scheduled"}
    assert set(states(hub, local_stop.command.id).values()) == {"scheduled"}
    again = send(hub, {"verb": "stop", "priority": "emergency", "start_at": start,
                       "target": {"areas": ["27694"]}}, COMMUNE_OPERATOR)
    assert set(states(hub, local_stop.command.id).values()) == {"superseded"}  # same scope: as before
    corrected = send(hub, {"verb": "play", "content_id": content(hub), "priority": "emergency",
                           "start_at": start, "target": {"areas": ["80"]}}, PROVINCE_OPERATOR)
    assert set(states(hub, alert.command.id).values()) == {"superseded"}
    assert set(states(hub, again.command.id).values()) == {"superseded"}  # the wider scope wins
    assert set(states(hub, corrected.command.id).values()) == {"scheduled"}


def test_a_narrower_issuer_does_not_supersede_a_wider_ones_queued_command(hub) -> None:
    add(hub, "pending-1")
    wide = send(hub, {"verb": "set_volume", "params": {"level": 90}, "priority": "emergency",
                      "target": {"areas": ["80"]}}, PROVINCE_OPERATOR)
    narrow = send(hub, {"verb": "set_volume", "params": {"level": 10}, "priority": "emergency",
                        "target": {"areas": ["27694"]}}, COMMUNE_OPERATOR)
    assert states(hub, wide.command.id) == {"PENDING-1": "queued"}
    assert states(hub, narrow.command.id) == {"PENDING-1": "queued"}


# -- 2. an ack ends only a row the device was handed --------------------------------------------------------
def test_an_ack_ends_only_a_row_that_was_sent(hub) -> None:
    """A device answering a command it was never sent (a scheduled one, or one still waiting
    for a worker) changes nothing; once the worker sent it, the same answer ends it."""
    add(hub, "pending-1", "pending-2")
    later = send(hub, {"verb": "stop", "start_at": in_an_hour(), "target": {"devices": ["PENDING-1"]}})
    waiting = send(hub, {"verb": "set_volume", "params": {"level": 5}, "target": {"devices": ["PENDING-2"]}})
    ing = Ingest(hub, vendors=[])
    ing.sink.ack("loopback", "pending-1", Ack(later.command.id, True))
    ing.sink.ack("loopback", "pending-2", Ack(waiting.command.id, False, reason="busy"))
    ing.flush()
    assert states(hub, later.command.id) == {"PENDING-1": "scheduled"}
    assert states(hub, waiting.command.id) == {"PENDING-2": "queued"}
    assert ing.stats["acks_applied"] == 0
    make_worker(hub).work(burst=True, logging_level="WARNING")
    assert states(hub, waiting.command.id) == {"PENDING-2": "sent"}
    ing.sink.ack("loopback", "pending-2", Ack(waiting.command.id, True))
    ing.flush()
    assert states(hub, waiting.command.id) == {"PENDING-2": "acked"}


def test_an_ack_that_beats_the_worker_leaves_no_answered_row_without_its_sent_time(hub, monkeypatch) -> None:
    """Under load a device's ack reaches the ingest while the worker is still in the transport's
    send, before it marks the row `sent`. The row ends `acked` at once and already says when it
    went out (at the latest, when the answer came); once the worker finishes, sent_at is the
    handover time, which is not later. Before the fix such a row showed `acked` with no sent_at."""
    add(hub, "pending-1")
    cmd = send(hub, {"verb": "set_volume", "params": {"level": 40}, "target": {"devices": ["PENDING-1"]}})
    ids = [d.id for d in rows(hub, cmd.command.id).values()]
    ing = Ingest(hub, vendors=[])
    seen: dict[str, object] = {}
    real_send = LoopbackAdapter.send

    def answered_at_once(self, batch):  # noqa: ANN001, ANN202 — the device answers before send returns
        ing.sink.ack("loopback", "pending-1", Ack(cmd.command.id, True))
        ing.flush()
        row = rows(hub, cmd.command.id)["PENDING-1"]
        seen.update(state=row.state, sent_at=row.sent_at, finished_at=row.finished_at)
        return real_send(self, batch)

    monkeypatch.setattr(LoopbackAdapter, "send", answered_at_once)
    send_batch(cmd.command.id, "loopback", ids, rt=hub)
    assert seen["state"] == "acked"
    assert seen["sent_at"] is not None and seen["sent_at"] <= seen["finished_at"]
    row = rows(hub, cmd.command.id)["PENDING-1"]
    assert row.state == "acked" and row.sent_at is not None
    assert row.sent_at <= seen["sent_at"]


# -- 3. a device that comes back gets what it missed, once --------------------------------------------------
def _resend_jobs(rt) -> list[tuple[str, list[int]]]:
    from rq.job import Job

    from hub.runtime import JOB_SERIALIZER

    out = []
    for priority in ("emergency", "priority", "normal"):
        for job in Job.fetch_many(rt.queue(priority).get_job_ids(), connection=rt.redis, serializer=JOB_SERIALIZER):
            if job is not None and job.func_name == "hub.delivery.redeliver.resend":
                out.append((priority, list(job.args[1])))
    return out


def test_a_device_that_comes_back_is_sent_again_only_what_still_stands(hub) -> None:
    """Rows `sent` and unanswered when the device comes back: the newest per slot is sent again;
    an older one a newer command of its slot replaced is not, unless the newer is of a lower class
    (it could not have replaced it); other devices' rows are left alone."""
    from hub.delivery.redeliver import Comebacks

    add(hub, "pending-1", "pending-2")
    one = {"devices": ["PENDING-1"]}
    vol_old = send(hub, {"verb": "set_volume", "params": {"level": 10}, "target": one})
    make_worker(hub).work(burst=True, logging_level="WARNING")
    vol_new = send(hub, {"verb": "set_volume", "params": {"level": 20}, "target": one})
    alert = send(hub, {"verb": "stop", "priority": "emergency", "target": one})
    make_worker(hub).work(burst=True, logging_level="WARNING")
    later = send(hub, {"verb": "play", "content_id": content(hub), "priority": "normal", "target": one})
    other = send(hub, {"verb": "set_volume", "params": {"level": 30}, "target": {"devices": ["PENDING-2"]}})
    make_worker(hub).work(burst=True, logging_level="WARNING")
    assert {states(hub, c.command.id)["PENDING-1" if c is not other else "PENDING-2"]
            for c in (vol_old, vol_new, alert, later, other)} == {"sent"}
    ids = {name: next(iter(rows(hub, c.command.id).values())).id
           for name, c in (("vol_old", vol_old), ("vol_new", vol_new), ("alert", alert), ("later", later))}
    back = Comebacks(hub)
    back.note(["PENDING-1"], utcnow())
    assert back.run() == 3
    jobs = _resend_jobs(hub)
    # the normal play came after the emergency stop, but could not replace it
    assert sorted(jobs) == [("emergency", [ids["alert"]]), ("normal", [ids["vol_new"], ids["later"]])]
    assert back.run() == 0  # not twice for the same comeback
    from hub.delivery.redeliver import resend

    assert resend("loopback", [ids["alert"]], rt=hub) == {"resent": 1, "acked": 0, "not_taken": 0}
    assert states(hub, alert.command.id) == {"PENDING-1": "sent"}  # still waits for the device's answer


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_device_that_comes_back_gets_the_emergency_it_missed_and_acts_once(fault_hub) -> None:
    """Real Mosquitto, `hub worker` and `hub ingest` processes, simulated speakers with clean
    sessions. `away` lost its link before the emergency was published (the broker took it and
    dropped it: no subscriber); `unheard` played it but its ack was lost; `stopped` played it,
    lost the ack, then got a `stop`. When they come back, `away` plays it, `unheard` answers again
    without playing twice, `stopped` is not made to play it again. Before the fix the first two
    rows stayed `sent` until they expired."""
    h = fault_hub()
    away, unheard, stopped = h.register(3)
    fleet = h.start_fleet([away, unheard, stopped])
    h.start("ingest")
    h.wait_online(3)
    w = h.start("worker")
    wait_until(lambda: "Listening on" in w.output(), 30, "the worker to listen", h.live())
    fleet.kill(away)
    wait_until(lambda: not fleet.device(away).connected, 10, "the device's link to drop")
    fleet.set_faults(unheard, silent=True)  # acts, answers nothing: as if its ack died with the broker
    fleet.set_faults(stopped, silent=True)
    alert = send(h.rt, {"verb": "play", "content_id": content(h.rt, duration_s=30.0), "priority": "emergency",
                        "expires_at": (utcnow() + timedelta(seconds=150)).isoformat(),
                        "target": {"areas": ["27694"]}})
    wait_until(lambda: h.counts(alert.command.id)["sent"] == 3, 30, "the emergency to be sent", h.live())
    wait_until(lambda: all(fleet.device(a).command(alert.command.id) for a in (unheard, stopped)), 15,
               "the connected devices to receive it")
    fleet.set_faults(stopped, silent=False)
    stop = send(h.rt, {"verb": "stop", "priority": "emergency", "target": {"devices": [stopped.upper()]}})
    wait_until(lambda: h.counts(stop.command.id)["acked"] == 1, 30, "the stop to be acked", h.live())
    assert h.counts(alert.command.id)["sent"] == 3  # nobody acked the emergency yet
    fleet.set_faults(unheard, silent=False)
    for a in (unheard, stopped):
        fleet.kill(a)
    for a in (away, unheard, stopped):
        fleet.revive(a, timeout=30)
    wait_until(lambda: h.counts(alert.command.id)["acked"] == 2, 45,
               "the devices that came back to acknowledge the emergency", h.live())
    got = rows(h.rt, alert.command.id)
    assert {a: got[a.upper()].state for a in (away, unheard)} == {away: "acked", unheard: "acked"}, dump_logs(h)
    time.sleep(3.0)  # a wrong resend to `stopped` would have reached it by now
    copies = {a: [c for c in fleet.device(a).commands if c.id == alert.command.id] for a in (away, unheard, stopped)}
    assert len(copies[away]) == 1 and fleet.device(away).activity == "playing"
    assert [c.duplicate for c in copies[unheard]] == [False, True]  # answered again, played once
    assert len(copies[stopped]) == 1 and fleet.device(stopped).activity == "idle"  # the stop stands
    assert got[stopped.upper()].state == "sent"  # it played, but never said so: not acked


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_an_emergency_survives_a_broker_restart_mid_fan_out(fault_hub) -> None:
    """Mosquitto stops for 3 s while an emergency fans out to 300 clean-session speakers. The
    broker takes publishes for devices that have not subscribed again and drops them, and acks
    sent just before the stop die with it; the devices' presence coming back makes the hub send
    the rows still unanswered again. Every device ends acked, none acts twice (before the fix,
    part of the fleet stayed `sent` until expires_at, then `expired`)."""
    h = fault_hub(batch_size=10)  # 30 jobs: the fan-out takes a moment, the restart lands in it
    addresses = h.register(300)
    h.start_fleet(addresses, ack_delay_s=1.0)  # the acks of those served before the stop fall into it
    h.start("ingest")
    h.wait_online(300)
    w = h.start("worker")
    wait_until(lambda: "Listening on" in w.output(), 30, "the worker to listen", h.live())
    sub = send(h.rt, {"verb": "set_volume", "params": {"level": 61}, "priority": "emergency",
                      "expires_at": (utcnow() + timedelta(seconds=90)).isoformat(), "target": {"areas": ["27694"]}})
    wait_until(lambda: h.counts(sub.command.id)["queued"] < 300, 10, "the fan-out to begin", h.live())
    before = h.counts(sub.command.id)
    h.broker.restart(down_s=3.0)
    wait_until(lambda: h.counts(sub.command.id)["acked"] == 300, 60, "every device to ack the emergency", h.live())
    rows_ = h.wait_terminal(sub.command.id, timeout=5)
    h.figures("broker restart", sub.command.id, rows_, at_restart={k: v for k, v in before.items() if v})
    h.check_consistent(sub.command.id, rows_)


# -- 4. a worker killed mid-send: its emergency goes out again within 25 s -------------------------------------
def _started(h, priority: str = "emergency") -> list[str]:
    q = Queue(h.rt.queue_name(priority), connection=h.rt.redis)
    return StartedJobRegistry(queue=q).get_job_ids(cleanup=False)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_an_emergency_whose_worker_was_killed_is_acked_within_25_s(fault_hub) -> None:
    """A real `hub worker` takes an emergency batch, claims its rows and writes its publishes to a
    broker that does not read them (paused); it is killed with SIGKILL there, and the broker dies
    too with what it had not read (a restart). Another worker is idle. The dead job's rows are
    handed to a new job as soon as rq sees the job abandoned, and every device acks within 25 s of
    the kill; none acts twice. requeue_after_s is the production 60 s: before the fix the rows
    waited for it (about 64 s)."""
    h = fault_hub(batch_size=100, requeue_after_s=60)
    addresses = h.register(60)
    h.start_fleet(addresses)
    h.start("ingest")
    h.wait_online(60)
    w1 = h.start("worker")
    wait_until(lambda: "Listening on" in w1.output(), 30, "worker-1 to listen", h.live())
    warm = send(h.rt, {"verb": "set_volume", "params": {"level": 13}, "target": {"devices": [addresses[0].upper()]}})
    wait_until(lambda: h.counts(warm.command.id)["acked"] == 1, 20, "the warm-up to be acked", h.live())
    h.broker.pause()
    sub = send(h.rt, {"verb": "set_volume", "params": {"level": 44}, "priority": "emergency",
                      "expires_at": (utcnow() + timedelta(seconds=120)).isoformat(),
                      "target": {"areas": ["27694"]}})
    wait_until(lambda: _started(h), 15, "worker-1 to start the batch", h.live())
    w2 = h.start("worker")
    wait_until(lambda: "Listening on" in w2.output(), 30, "worker-2 to listen", h.live())
    h.kill9("worker-1")
    killed = time.monotonic()
    os.killpg(h.broker.p.pid, signal.SIGKILL)  # still paused: what worker-1 wrote is never read
    h.broker.p.wait(10)
    h.broker.p = None
    h.broker.start()
    assert h.counts(sub.command.id)["queued"] == 60
    wait_until(lambda: h.counts(sub.command.id)["acked"] == 60, max(1.0, 25 - (time.monotonic() - killed)),
               "every device to ack within 25 s of the kill", [p for p in h.live() if p.name != "worker-1"])
    took = time.monotonic() - killed
    rows_ = h.wait_terminal(sub.command.id, timeout=5)
    h.check_consistent(sub.command.id, rows_)
    print(f"\n[worker killed] all 60 acked {took:.1f} s after the kill")
    assert took <= 25, dump_logs(h)
