"""Scheduled commands: held `scheduled` until their start_at, published then (not before), once,
whatever the number of scheduler instances; cancellable before they start; caught up or expired
visibly after a scheduler outage. Real Redis (own queue names), real Mosquitto (own prefix)."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.api import create_app
from hub.access.actors import LOCAL_ADMIN, Actor, local_admin
from hub.store.db import utcnow
from hub.delivery.dispatch import DispatchError, cancel, requeue_stale, submit
from hub.store.models import AuditEntry, Command, Delivery
from hub.fleet.registry import upsert_device
from hub.runtime import Runtime
from hub.delivery.release import Scheduler, release_due
from hub.schemas import CommandSchema
from hub.testing import HubHarness, WorkerThreads, scaled, wait_until
from hub.delivery.worker import make_worker
from tests.support import loopback_vendor
from tests.support.services import MQTT_HOST, MQTT_PORT
from tests.support.loopback_vendor import LoopbackAdapter
from tests.support.api import assert_error


# -- helpers ---------------------------------------------------------------------------------------
def add(rt: Runtime, *addresses: str, area: str = "27694") -> list[str]:
    with rt.db.session() as s:
        for a in addresses:
            upsert_device(s, rt.plugins, {"id": a.upper(), "vendor": "loopback", "kind": "speaker",
                                          "area_code": area, "address": a, "tags": []})
    return [a.upper() for a in addresses]


def at(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


def send(rt: Runtime, raw: dict[str, Any], actor: Actor = LOCAL_ADMIN) -> Any:
    for key in ("start_at", "expires_at"):
        if isinstance(raw.get(key), datetime):
            raw = {**raw, key: raw[key].isoformat()}
    return submit(rt, actor, CommandSchema().load(raw))


def rows(rt: Runtime, cid: str) -> dict[str, Delivery]:
    with rt.db.session() as s:
        return {d.device_id: d for d in s.scalars(select(Delivery).where(Delivery.command_id == cid))}


def states(rt: Runtime, cid: str) -> Counter[str]:
    return Counter(d.state for d in rows(rt, cid).values())


def sent_addresses() -> list[str]:
    return [a for call in loopback_vendor.CALLS for a in call]


@pytest.fixture
def running(hub: Runtime) -> Iterator[Runtime]:
    """A scheduler and a worker around the hub; lead time short so that the test sees the release."""
    hub.settings.scheduler_lead_s = scaled(0.5)  # a loaded machine needs longer to take the job and load its rows
    sched, workers = Scheduler(hub, name="test").start(), WorkerThreads(hub)
    yield hub
    sched.stop()
    workers.stop()


# -- input and what the API shows ----------------------------------------------------------------------
@pytest.fixture
def client(hub: Runtime) -> FlaskClient:
    return create_app(hub, authenticator=local_admin).test_client()


def test_bad_start_times_are_refused_naming_the_field(hub: Runtime, client: FlaskClient) -> None:
    add(hub, "ok-1")
    body = {"verb": "stop", "target": {"areas": ["27694"]}}
    assert_error(client.post("/api/commands", json={**body, "start_at": at(-60).isoformat()}),
                 422, "json", "start_at", "lies in the past")
    assert_error(client.post("/api/commands", json={**body, "start_at": at(3600).isoformat(),
                                                    "expires_at": at(1800).isoformat()}),
                 422, "json", "expires_at", "must be after start_at")
    assert_error(client.post("/api/commands", json={**body, "start_at": at(400 * 86400).isoformat()}),
                 422, "json", "start_at", "days ahead")
    assert_error(client.post("/api/commands", json={**body, "start_at": "2030-01-01T07:00:00"}),
                 422, "json", "start_at")  # no UTC offset: ambiguous
    with hub.db.session() as s:
        assert s.scalars(select(Command)).all() == []  # nothing was created by a refusal


def test_a_start_at_just_past_means_now(hub: Runtime) -> None:
    add(hub, "ok-1")
    sub = send(hub, {"verb": "stop", "target": {"areas": ["27694"]}, "start_at": at(-0.5)})
    assert sub.counts["queued"] == 1 and sub.counts["scheduled"] == 0
    make_worker(hub).work(burst=True, logging_level="WARNING")
    assert states(hub, sub.command.id) == {"acked": 1}


def test_the_api_shows_start_at_and_scheduled_deliveries(hub: Runtime, client: FlaskClient) -> None:
    add(hub, "ok-1", "ok-2")
    start = at(3600).replace(microsecond=0)
    r = client.post("/api/commands", json={"verb": "set_volume", "params": {"level": 40},
                                           "target": {"areas": ["27694"]}, "start_at": start.isoformat()})
    assert r.status_code == 201, r.get_json()
    cmd = r.get_json()
    assert datetime.fromisoformat(cmd["start_at"]) == start and cmd["released_at"] is None
    assert cmd["counts"]["scheduled"] == 2 and cmd["counts"]["queued"] == 0
    # the default lifetime runs from the start, not from now
    assert datetime.fromisoformat(cmd["expires_at"]) == start + timedelta(seconds=hub.settings.default_ttl_s)
    got = client.get(f"/api/commands/{cmd['id']}/deliveries?state=scheduled").get_json()
    assert {d["device_id"] for d in got} == {"OK-1", "OK-2"} and all(d["sent_at"] is None for d in got)
    assert hub.queue("normal").count == 0  # nothing for the workers yet


# -- supersede rules -----------------------------------------------------------------------------------
def test_an_immediate_command_does_not_supersede_a_future_scheduled_one(hub: Runtime) -> None:
    add(hub, "ok-1")
    later = send(hub, {"verb": "set_volume", "params": {"level": 10}, "target": {"areas": ["27694"]},
                       "start_at": at(3600)})
    now = send(hub, {"verb": "set_volume", "params": {"level": 90}, "target": {"areas": ["27694"]}})
    assert states(hub, later.command.id) == {"scheduled": 1} and states(hub, now.command.id) == {"queued": 1}


def test_scheduled_commands_supersede_only_at_the_same_start(hub: Runtime) -> None:
    add(hub, "ok-1")
    t7, t8 = at(3600), at(7200)
    volume = lambda level, start: {"verb": "set_volume", "params": {"level": level},  # noqa: E731
                                   "target": {"areas": ["27694"]}, "start_at": start}
    first, other, fixed = send(hub, volume(10, t7)), send(hub, volume(20, t8)), send(hub, volume(30, t7))
    assert states(hub, first.command.id) == {"superseded": 1}
    assert rows(hub, first.command.id)["OK-1"].reason == f"superseded by command {fixed.command.id} (same start_at)"
    assert states(hub, other.command.id) == {"scheduled": 1} and states(hub, fixed.command.id) == {"scheduled": 1}


# -- cancel -----------------------------------------------------------------------------------------------
def test_cancel_before_start_ends_superseded_and_nothing_is_sent(running: Runtime, client: FlaskClient) -> None:
    hub = running
    add(hub, "ok-1", "ok-2")
    sub = send(hub, {"verb": "stop", "target": {"areas": ["27694"]}, "start_at": at(1.5)})
    r = client.post(f"/api/commands/{sub.command.id}/cancel")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["cancelled_by"] == LOCAL_ADMIN.name and body["counts"]["superseded"] == 2
    time.sleep(2.5)  # past the start
    assert {(d.state, d.reason, d.sent_at) for d in rows(hub, sub.command.id).values()} == {
        ("superseded", f"cancelled by {LOCAL_ADMIN.name}", None)}
    assert sent_addresses() == []
    with hub.db.session() as s:
        assert s.scalars(select(AuditEntry.action).where(AuditEntry.object_id == sub.command.id)).all() == [
            "command.submit", "command.cancel"]
    assert_error(client.post(f"/api/commands/{sub.command.id}/cancel"), 409, contains="already cancelled")
    now = send(hub, {"verb": "stop", "target": {"areas": ["27694"]}})
    assert_error(client.post(f"/api/commands/{now.command.id}/cancel"), 409, contains="not scheduled")
    assert_error(client.post("/api/commands/nope/cancel"), 404)


def test_a_cancel_reaches_a_worker_already_holding_the_command(running: Runtime) -> None:
    hub = running
    hub.settings.scheduler_lead_s = 3.0  # released at once, then the worker waits for the start
    add(hub, "ok-1")
    from rq.registry import StartedJobRegistry

    sub = send(hub, {"verb": "stop", "target": {"areas": ["27694"]}, "start_at": at(3.0)})
    assert wait_until(lambda: StartedJobRegistry(queue=hub.queue("normal")).get_job_ids(), 5)  # a worker holds it
    time.sleep(0.5)  # the job has loaded its rows and waits for the start
    assert states(hub, sub.command.id) == {"queued": 1}
    cancel(hub, LOCAL_ADMIN, sub.command.id)
    time.sleep(max(0.0, (sub.command.start_at - utcnow()).total_seconds()) + 0.5)
    assert states(hub, sub.command.id) == {"superseded": 1} and sent_addresses() == []
    from rq.job import Job
    from rq.registry import FinishedJobRegistry

    from hub.runtime import JOB_SERIALIZER

    done = [Job.fetch(j, connection=hub.redis, serializer=JOB_SERIALIZER) for j in FinishedJobRegistry(queue=hub.queue("normal")).get_job_ids()]
    assert [j.return_value()["cancelled"] for j in done if j.func_name == "hub.delivery.due.send_due"] == [1]  # heard it


def test_only_senders_of_its_areas_may_cancel(hub: Runtime) -> None:
    add(hub, "ok-1")
    sub = send(hub, {"verb": "stop", "target": {"areas": ["27694"]}, "start_at": at(3600)})
    viewer = Actor(name="v", roles=frozenset({"viewer"}), areas=frozenset({"27694"}))
    elsewhere = Actor(name="o", roles=frozenset({"operator"}), areas=frozenset({"27697"}))
    for actor, words in ((viewer, "may not cancel"), (elsewhere, "27694")):
        with pytest.raises(DispatchError) as err:
            cancel(hub, actor, sub.command.id)
        assert err.value.status == 403 and words in err.value.message
    assert states(hub, sub.command.id) == {"scheduled": 1}


# -- on time, once -----------------------------------------------------------------------------------------
def test_a_scheduled_command_waits_for_its_start_then_goes(running: Runtime) -> None:
    hub = running
    add(hub, "ok-1", "pending-1")
    start = at(1.5)
    sub = send(hub, {"verb": "stop", "target": {"areas": ["27694"]}, "start_at": start})
    time.sleep(max(0.0, (start - utcnow()).total_seconds() - 0.3))
    assert sent_addresses() == [] and states(hub, sub.command.id)["sent"] == 0
    assert wait_until(lambda: states(hub, sub.command.id) == {"acked": 1, "sent": 1}, 5)
    for d in rows(hub, sub.command.id).values():
        late = (d.sent_at - start).total_seconds()
        assert 0 <= late < 0.5, (d.device_id, late)


def test_a_scheduled_send_keeps_the_retry_rules(running: Runtime) -> None:
    hub = running
    add(hub, "flaky-1", "down-1", "refuse-1", "ok-1")
    subs = {a: send(hub, {"verb": "stop", "target": {"devices": [a.upper()]}, "start_at": at(1.0)})
            for a in ("flaky-1", "down-1", "refuse-1", "ok-1")}
    end = lambda a: rows(hub, subs[a].command.id)[a.upper()]  # noqa: E731
    assert wait_until(lambda: all(end(a).state not in ("scheduled", "queued") for a in subs), 10)
    assert end("flaky-1").state == "acked" and end("ok-1").state == "acked"
    assert (end("down-1").state, end("down-1").reason) == ("failed", "gave up after 3 attempts: HTTP 503 from gateway")
    assert (end("refuse-1").state, end("refuse-1").reason) == ("failed", "device rejected the command")
    assert LoopbackAdapter.attempts == {"flaky-1": 2, "down-1": 3, "refuse-1": 1, "ok-1": 1}
    assert end("down-1").attempts == 3


def test_two_scheduler_instances_release_once(hub: Runtime) -> None:
    hub.settings.scheduler_lead_s = scaled(0.5)  # a loaded machine needs longer to take the job and load its rows
    add(hub, *[f"ok-{i}" for i in range(5)])
    subs = [send(hub, {"verb": "set_volume", "params": {"level": 10 + i}, "target": {"devices": [f"OK-{i}"]},
                       "start_at": at(1.0 + 0.1 * i)}) for i in range(5)]
    scheds = [Scheduler(hub, name=f"s{i}").start() for i in range(2)]
    workers = WorkerThreads(hub, 2)
    try:
        assert wait_until(lambda: all(states(hub, s.command.id) == {"acked": 1} for s in subs), 10)
        time.sleep(0.5)
    finally:
        for s in scheds:
            s.stop()
        workers.stop()
    assert sorted(sent_addresses()) == [f"ok-{i}" for i in range(5)]  # each device once
    assert sum(s.stats["commands"] for s in scheds) == 5
    assert sorted(s.stats["commands"] for s in scheds)[0] == 0  # only the leader released


def test_a_scheduler_that_was_down_catches_up_or_expires_visibly(hub: Runtime) -> None:
    add(hub, "ok-1", "ok-2")
    late = send(hub, {"verb": "set_volume", "params": {"level": 10}, "target": {"devices": ["OK-1"]},
                      "start_at": at(0.3)})
    gone = send(hub, {"verb": "set_volume", "params": {"level": 10}, "target": {"devices": ["OK-2"]},
                      "start_at": at(0.3), "expires_at": at(0.6)})
    time.sleep(1.0)  # no scheduler ran through both starts and one expiry
    assert states(hub, late.command.id) == {"scheduled": 1}
    res = release_due(hub)
    assert res.commands == 2 and res.expired == 1 and res.late_s > 0.5
    assert states(hub, gone.command.id) == {"expired": 1}
    assert "no scheduler" in rows(hub, gone.command.id)["OK-2"].reason
    make_worker(hub).work(burst=True, logging_level="WARNING")
    d = rows(hub, late.command.id)["OK-1"]
    assert d.state == "acked" and (d.sent_at - late.command.start_at).total_seconds() > 0.5  # late, and says so


def test_requeue_never_sends_a_scheduled_command_early(hub: Runtime) -> None:
    add(hub, "ok-1")
    hub.settings.requeue_after_s = 0
    sub = send(hub, {"verb": "stop", "target": {"areas": ["27694"]}, "start_at": at(3600)})
    assert requeue_stale(hub, now=at(1)) == 0
    release_due(hub, now=sub.command.start_at - timedelta(seconds=1))  # released, start still ahead
    hub.queue("normal").empty()  # as if the job were lost
    assert requeue_stale(hub) == 0 and states(hub, sub.command.id) == {"queued": 1}


# -- with real Mosquitto and the MQTT speaker simulator ------------------------------------------------------
def test_mqtt_speakers_receive_a_scheduled_play_at_its_start(tmp_path: Path, mqtt_prefix: str,
                                                             services: None) -> None:
    pytest.importorskip("hub_mqtt_speaker")
    from hub_mqtt_speaker.device import SimDevice
    from hub_mqtt_speaker.simulator import Fleet

    config = {"host": MQTT_HOST, "port": MQTT_PORT, "topic_prefix": mqtt_prefix}
    with HubHarness(tmp_path, "mqtt_speaker", config) as h:
        h.rt.settings.scheduler_lead_s = scaled(0.5)
        addresses = [f"spk-{i}" for i in range(3)]
        ids = [h.add_device(a.upper(), a) for a in addresses]
        content = h.add_content(title="Lịch tiêm chủng", kind="tts_text", body="Thông báo lịch tiêm chủng.",
                                media={"uri": "http://127.0.0.1/x.mp3", "duration_s": 1.0})
        fleet = Fleet(MQTT_HOST, MQTT_PORT, mqtt_prefix, [SimDevice(a) for a in addresses])
        fleet.start(timeout=30)
        scheds = [Scheduler(h.rt, name=f"s{i}").start() for i in range(2)]
        workers = WorkerThreads(h.rt, 2)
        try:
            start = at(2.0)
            sub = submit(h.rt, LOCAL_ADMIN, CommandSchema().load({
                "verb": "play", "content_id": content, "target": {"devices": ids}, "start_at": start.isoformat()}))
            # released to a worker lead + window (1.5 s) before its start, so maybe already queued
            assert sub.counts["scheduled"] + sub.counts["queued"] == 3, sub.counts
            time.sleep(max(0.0, (start - utcnow()).total_seconds() - 0.4))
            assert all(fleet.device(a).command(sub.command.id) is None for a in addresses)  # not before its time
            got = h.wait(sub.command.id, timeout=10)
            assert {o.state for o in got.values()} == {"acked"}, got
            for a in addresses:
                received = fleet.device(a).command(sub.command.id)
                assert received is not None and received.received_at >= start, a
                assert sum(c.id == sub.command.id for c in fleet.device(a).commands) == 1, a  # once, with 2 schedulers
            with h.rt.db.session() as s:
                jitter = [(d.sent_at - start).total_seconds()
                          for d in s.scalars(select(Delivery).where(Delivery.command_id == sub.command.id))]
            assert all(0 <= j < 0.5 for j in jitter), jitter
        finally:
            for sc in scheds:
                sc.stop()
            workers.stop()
            fleet.stop(clear_retained=True)


# -- the command line and real processes ------------------------------------------------------------------------
def test_hub_send_at_then_cancel_on_the_command_line(config_file: Path, tmp_path: Path) -> None:
    from tests.support.cli import hub as cli, one_line_error

    assert cli(config_file, "init-db").returncode == 0
    areas = Path(__file__).parent / "data/legacy-three-level.yaml"
    assert cli(config_file, "import", "areas", str(areas)).returncode == 0
    csv = tmp_path / "devices.csv"
    csv.write_text("id,vendor,kind,area_code,address,tags\nSPK-1,mqtt_speaker,speaker,27694,spk-1,\n",
                   encoding="utf-8")
    assert cli(config_file, "import", "devices", str(csv)).returncode == 0
    assert "start_at" in one_line_error(cli(config_file, "send", "stop", "--area", "27694", "--at", "yesterday"))
    assert "start_at: lies in the past" in one_line_error(
        cli(config_file, "send", "stop", "--area", "27694", "--at", at(-3600).isoformat()))
    start = at(3600).replace(microsecond=0)
    r = cli(config_file, "send", "stop", "--area", "27694", "--at", start.isoformat())
    assert r.returncode == 0 and "scheduled 1" in r.stdout and f"starts at {start.isoformat()}" in r.stdout, r
    cid = r.stdout.split()[1]
    r = cli(config_file, "cancel", cid)
    assert r.returncode == 0 and "superseded 1" in r.stdout, r
    row = cli(config_file, "deliveries", cid, "--json").stdout
    assert '"state": "superseded"' in row and "cancelled by" in row
    assert "already cancelled" in one_line_error(cli(config_file, "cancel", cid))


@pytest.mark.slow
def test_two_hub_scheduler_processes_release_once_on_time(rt: Runtime, legacy_areas: None, config_file: Path,
                                                           mqtt_prefix: str, tmp_path: Path) -> None:
    pytest.importorskip("hub_mqtt_speaker")
    from hub_mqtt_speaker.device import SimDevice
    from hub_mqtt_speaker.simulator import Fleet

    from tests.support.processes import Proc

    addresses = [f"spk-{i}" for i in range(4)]
    with rt.db.session() as s:
        for a in addresses:
            upsert_device(s, rt.plugins, {"id": a.upper(), "vendor": "mqtt_speaker", "kind": "speaker",
                                          "area_code": "27694", "address": a, "tags": []})
    fleet = Fleet(MQTT_HOST, MQTT_PORT, mqtt_prefix, [SimDevice(a) for a in addresses])
    fleet.start(timeout=30)
    procs = [Proc(name, args, config_file, tmp_path) for name, args in (
        ("ingest", ["ingest"]), ("worker", ["worker"]), ("scheduler-a", ["scheduler", "--name", "a"]),
        ("scheduler-b", ["scheduler", "--name", "b"]))]
    try:
        from tests.support.processes import wait_until as wait_procs
        wait_procs(lambda: all(("istening on" if p.name == "worker" else "running") in p.output() for p in procs),
                   30, "worker, ingest and schedulers to start", procs)
        start = at(4.0)
        sub = send(rt, {"verb": "set_volume", "params": {"level": 35}, "target": {"areas": ["27694"]},
                        "start_at": start})
        wait_procs(lambda: states(rt, sub.command.id) == {"acked": 4}, 30, "the scheduled command to be acked",
                   procs)
        for a in addresses:
            got = [c for c in fleet.device(a).commands if c.id == sub.command.id]
            assert len(got) == 1 and got[0].received_at >= start, (a, got)
        for d in rows(rt, sub.command.id).values():
            assert 0 <= (d.sent_at - start).total_seconds() < 0.5, d.sent_at
        logs = [p.output() for p in procs if p.name.startswith("scheduler")]
        assert sum("released 1 scheduled commands" in log for log in logs) == 1, logs
    finally:
        for p in procs:
            p.stop()
        fleet.stop(clear_retained=True)


def test_with_no_scheduler_at_all_the_sweeper_expires_them_saying_why(hub: Runtime) -> None:
    from hub.delivery.states import expire_due

    add(hub, "ok-1")
    sub = send(hub, {"verb": "stop", "target": {"areas": ["27694"]}, "start_at": at(0.2), "expires_at": at(0.4)})
    time.sleep(0.6)
    with hub.db.session() as s:
        assert expire_due(s) == []  # never sent: says nothing about the device's link
    d = rows(hub, sub.command.id)["OK-1"]
    assert d.state == "expired" and "no scheduler released it" in d.reason
