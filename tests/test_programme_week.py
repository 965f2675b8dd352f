"""Done when: a week of programmes (weekdays 06:00 and 17:00 local, a weekly Sunday slot, one
excluded date, one moved occurrence) runs on an injected clock — the real materialiser and the real
release code, a real database and Redis (the test's own queue) — and every occurrence is released
at its local time, once, across a scheduler restart in the middle; `.ics` export → import gives the
same occurrences. Also: after an outage, an open slot goes late and a past one is recorded missed;
two schedulers at once make each slot once."""
from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

from flask.testing import FlaskClient
from sqlalchemy import select

from hub.access.actors import LOCAL_ADMIN, local_admin
from hub.api import create_app
from hub.broadcast import editing
from hub.broadcast.materialise import ISSUER, Materialiser
from hub.broadcast.programmes import LOCAL_TZ
from hub.delivery.release import next_start, release_due
from hub.runtime import Runtime
from hub.store.models import Command, Delivery
from tests.support.dispatch import add
from tests.support.programmes import (calendar, event, expected, next_monday, programme, published_content,
                                      week_calendars)

UTC = timezone.utc


class ClockedScheduler:
    """`hub scheduler` on an injected clock: the programme pass every `interval`, the release pass
    whenever the next command is due (a lead time before its start), as Scheduler.pass_once waits."""

    def __init__(self, rt: Runtime, interval: timedelta) -> None:
        self.rt, self.interval = rt, interval
        self.materialiser = Materialiser(rt, look_ahead=timedelta(hours=30))
        self.next_pass: datetime | None = None
        self.released: list[tuple[str, datetime]] = []  # (command id, clock at release)

    def step(self, now: datetime) -> datetime:
        """One wake-up at `now`; returns when it wakes next."""
        if self.next_pass is None or now >= self.next_pass:
            self.materialiser.run(now)
            self.next_pass = now + self.interval
        before = self._released_ids()
        release_due(self.rt, now=now)
        self.released += [(cid, now) for cid in self._released_ids() - before]
        nxt = next_start(self.rt)
        lead = timedelta(seconds=self.rt.settings.scheduler_lead_s)
        due = nxt - lead if nxt is not None else self.next_pass
        return max(now + timedelta(seconds=1), min(self.next_pass, due))

    def _released_ids(self) -> set[str]:
        with self.rt.db.session() as s:
            return set(s.scalars(select(Command.id).where(Command.issuer == ISSUER.name,
                                                          Command.released_at.is_not(None))))


def _queued_items(rt: Runtime) -> Counter[str]:
    """How many times each command was handed to a worker: the send_due jobs in the test's queues."""
    seen: Counter[str] = Counter()
    for priority in ("normal", "priority", "emergency"):
        for job in rt.queue(priority).jobs:
            for command_id, _start, _deliveries in job.args[1]:
                seen[command_id] += 1
    return seen


def test_a_week_of_programmes_fires_every_occurrence_on_time_once_across_a_restart(hub: Runtime) -> None:
    add(hub, "w1", "w2")
    monday = next_monday()
    news, weekly = week_calendars(monday)
    cid = published_content(hub)
    until = (monday + timedelta(days=7)).astimezone(UTC)
    clock = monday.astimezone(UTC) - timedelta(hours=3)
    for name, ical, target in (("Thời sự", news, {"areas": ["27694"]}), ("Bản tin tuần", weekly, {"devices": ["W1"]})):
        editing.create(hub, LOCAL_ADMIN, {"name": name, "ical": ical, "target": target, "content_id": cid,
                                          "valid_until": until}, now=clock)
    sched = ClockedScheduler(hub, interval=timedelta(hours=6))
    restart_at = monday.astimezone(UTC) + timedelta(days=2, hours=12)  # Wednesday noon
    released: list[tuple[str, datetime]] = []
    restarted: Runtime | None = None
    try:
        while clock < until + timedelta(hours=12):
            if restarted is None and clock >= restart_at:
                released += sched.released
                restarted = Runtime(hub.settings, plugins=hub.plugins)  # nothing carried over but the database
                sched = ClockedScheduler(restarted, interval=timedelta(hours=6))
            clock = sched.step(clock)
        released += sched.released
    finally:
        if restarted is not None:
            restarted.close()
    with hub.db.session() as s:
        commands = {c.id: c for c in s.scalars(select(Command).where(Command.issuer == ISSUER.name))}
        states = Counter(d.state for d in s.scalars(select(Delivery)))
    lead = timedelta(seconds=hub.settings.scheduler_lead_s + hub.settings.scheduler_window_s)
    assert sorted(c.start_at for c in commands.values()) == expected(monday)  # every occurrence, none twice
    assert sorted(cid for cid, _ in released) == sorted(commands)  # each released once
    for command_id, at in released:
        start = commands[command_id].start_at
        assert start - lead <= at <= start, (start.astimezone(LOCAL_TZ), at.astimezone(LOCAL_TZ))
        weekend = start.astimezone(LOCAL_TZ).weekday() >= 5  # the weekly slot lasts 30 min, the news 15
        assert commands[command_id].expires_at == start + timedelta(minutes=30 if weekend else 15)
    assert set(_queued_items(hub).values()) == {1} and set(_queued_items(hub)) == set(commands)
    local = sorted(c.start_at.astimezone(LOCAL_TZ).strftime("%a %H:%M") for c in commands.values())
    assert local.count("Thu 06:30") == 1 and "Thu 06:00" not in local and "Wed 17:00" not in local
    assert states == {"queued": 2 * 9 + 2}  # handed to workers: 9 news slots on two devices, 2 weekly on one


def test_ics_export_then_import_through_the_api_gives_the_same_occurrences(hub: Runtime) -> None:
    add(hub, "x1")
    monday = next_monday()
    news, weekly = week_calendars(monday)
    cid = published_content(hub)
    client: FlaskClient = create_app(hub, authenticator=local_admin).test_client()
    for name, ical in (("Thời sự", news), ("Bản tin tuần", weekly)):
        r = client.post("/api/programmes", json={"name": name, "ical": ical, "target": {"areas": ["27694"]},
                                                 "content_id": cid})
        assert r.status_code == 201, r.get_json()
    window = {"from": monday.isoformat(), "to": (monday + timedelta(days=7)).isoformat()}

    def starts() -> list[str]:
        out = []
        for p in client.get("/api/programmes").get_json():
            out += [o["start"] for o in client.get(f"/api/programmes/{p['id']}/occurrences", query_string=window)
                    .get_json()]
        return sorted(out)

    before = starts()
    exported = client.get("/api/programmes.ics")
    assert exported.status_code == 200 and exported.mimetype == "text/calendar"
    for p in client.get("/api/programmes").get_json():
        assert client.delete(f"/api/programmes/{p['id']}").status_code == 204
    r = client.post("/api/programmes/import", json={"ics": exported.get_data(as_text=True), "common": {
        "target": {"areas": ["27694"]}, "content_id": cid}})
    assert r.status_code == 201, r.get_json()
    assert sorted(p["name"] for p in r.get_json()["programmes"]) == ["Bản tin tuần", "Thời sự"]
    assert starts() == before == sorted(t.astimezone(LOCAL_TZ).isoformat() for t in expected(monday))
    assert before[0].endswith("+07:00") and "T06:00:00" in before[0]


def test_after_an_outage_an_open_slot_goes_late_and_a_past_one_is_recorded_missed(hub: Runtime) -> None:
    add(hub, "o1")
    monday = next_monday()
    cid = published_content(hub)
    ical = calendar(event("daily", monday.replace(hour=6), minutes=60, rrule={"freq": "daily"}))
    with hub.db.session() as s:  # saved before an outage, nothing made yet
        s.add(programme(ical, {"devices": ["O1"]}, name="Sáng", content_id=cid))
    # the hub was down until Tuesday 06:20: Monday's slot passed, Tuesday's (06:00-07:00) is open
    back = (monday + timedelta(days=1, hours=6, minutes=20)).astimezone(UTC)
    done = Materialiser(hub, look_ahead=timedelta(hours=2), catch_up=timedelta(days=2)).run(back)
    assert len(done.missed) == 1 and len(done.late) == 1 and not done.refused
    with hub.db.session() as s:
        by_key = {c.idempotency_key: c for c in s.scalars(select(Command).where(Command.issuer == ISSUER.name))}
        rows = {c.idempotency_key: s.scalars(select(Delivery).where(Delivery.command_id == c.id)).one()
                for c in by_key.values()}
    missed, late = by_key[done.missed[0]], by_key[done.late[0]]
    assert missed.start_at == monday.replace(hour=6).astimezone(UTC)  # planned times kept
    assert missed.expires_at == monday.replace(hour=7).astimezone(UTC)
    assert rows[missed.idempotency_key].state == "expired"
    assert "hub was not running" in rows[missed.idempotency_key].reason
    assert late.start_at == back and late.expires_at == (monday + timedelta(days=1, hours=7)).astimezone(UTC)
    assert rows[late.idempotency_key].state == "scheduled"
    again = Materialiser(hub, look_ahead=timedelta(hours=2), catch_up=timedelta(days=2)).run(back + timedelta(minutes=5))
    assert not again.created and not again.late and not again.missed  # a restart makes nothing twice


def test_two_schedulers_at_once_make_each_slot_once(hub: Runtime) -> None:
    add(hub, "t1", "t2")
    monday = next_monday()
    news, weekly = week_calendars(monday)
    cid = published_content(hub)
    clock = monday.astimezone(UTC) - timedelta(hours=1)
    with hub.db.session() as s:  # saved, nothing made yet: both schedulers start together
        s.add_all([programme(ical, {"areas": ["27694"]}, content_id=cid) for ical in (news, weekly)])
    others = [Runtime(hub.settings, plugins=hub.plugins) for _ in range(2)]
    results = []
    gate = threading.Barrier(2)

    def scheduler(rt: Runtime) -> None:
        gate.wait()
        results.append(Materialiser(rt, look_ahead=timedelta(days=7)).run(clock))

    threads = [threading.Thread(target=scheduler, args=(rt,)) for rt in others]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        for rt in others:
            rt.close()
    with hub.db.session() as s:
        keys = list(s.scalars(select(Command.idempotency_key).where(Command.issuer == ISSUER.name)))
    assert len(keys) == len(set(keys)) == len(expected(monday))
    assert sum(len(r.created) for r in results) == len(keys)  # one scheduler made each, the other found it
    assert all(not r.refused for r in results), [r.refused for r in results]


def test_the_scheduler_processes_programme_loop_makes_coming_slots_once_from_two_instances(hub: Runtime) -> None:
    from hub.broadcast.programme_loop import ProgrammeLoop
    from hub.testing import wait_until

    add(hub, "l1")
    cid = published_content(hub)
    at = (datetime.now(LOCAL_TZ) + timedelta(hours=2)).replace(second=0, microsecond=0, tzinfo=None)
    with hub.db.session() as s:
        s.add(programme(calendar(event("l", at, rrule={"freq": "hourly"})), {"devices": ["L1"]}, content_id=cid))
    hub.settings.programme_look_ahead_s = 6 * 3600.0
    others = [Runtime(hub.settings, plugins=hub.plugins) for _ in range(2)]
    loops = [ProgrammeLoop(rt, name=f"p{i}").start() for i, rt in enumerate(others)]
    try:
        assert wait_until(lambda: all(loop.passes for loop in loops), 60)
    finally:
        for loop in loops:
            loop.stop()
        for rt in others:
            rt.close()
    with hub.db.session() as s:
        starts = list(s.scalars(select(Command.start_at).where(Command.issuer == ISSUER.name)))
    assert len(starts) == len(set(starts)) in (4, 5)  # 2 h ahead to 6 h ahead, hourly: each slot once
