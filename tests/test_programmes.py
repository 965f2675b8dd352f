"""Programmes (lịch phát): recurrence in local time, .ics round trip, materialisation into scheduled
commands exactly once across runs and a restart, and overlaps reported per device."""
from __future__ import annotations

from datetime import timedelta, timezone

from sqlalchemy import select

from hub.broadcast.conflicts import conflicts
from hub.broadcast.ics import export_ics, import_ics, new_calendar, to_text
from hub.broadcast.materialise import ISSUER, Materialiser
from hub.broadcast.programmes import occurrences
from hub.runtime import Runtime
from hub.store.models import Command
from tests.support.dispatch import add
from tests.support.programmes import event, expected, next_monday, programme, published_content, week_calendars

UTC = timezone.utc


def test_a_week_expands_in_local_time_with_exclusions_extra_dates_and_a_moved_slot() -> None:
    monday = next_monday()
    news, weekly = week_calendars(monday)
    got = [o.start for ical in (news, weekly)
           for o in occurrences(programme(ical, {}), monday.astimezone(UTC), monday + timedelta(days=7))]
    assert sorted(got) == expected(monday)
    # 06:00 in Hà Nội is 23:00 UTC the day before
    assert min(got) == (monday + timedelta(hours=6)).astimezone(UTC) == monday.replace(tzinfo=UTC) - timedelta(hours=1)


def test_validity_range_clips_occurrences() -> None:
    monday = next_monday()
    news, _ = week_calendars(monday)
    p = programme(news, {}, valid_from=monday + timedelta(days=1), valid_until=monday + timedelta(days=2))
    got = occurrences(p, monday, monday + timedelta(days=7))
    assert [o.start for o in got] == [(monday + timedelta(days=1, hours=h)).astimezone(UTC) for h in (6, 17)]


def test_ics_export_then_import_gives_the_same_occurrences() -> None:
    monday = next_monday()
    news, weekly = week_calendars(monday)
    programmes = [programme(news, {}, name="Thời sự"), programme(weekly, {}, name="Bản tin tuần")]
    imported = import_ics(export_ics(programmes))
    assert sorted(name for name, _ in imported.values()) == ["Bản tin tuần", "Thời sự"]
    window = (monday, monday + timedelta(days=7))
    before = sorted(o.start for p in programmes for o in occurrences(p, *window))
    after = sorted(o.start for _, ical in imported.values() for o in occurrences(programme(ical, {}), *window))
    assert after == before == expected(monday)


def test_every_occurrence_becomes_exactly_one_command_across_runs_and_a_restart(hub: Runtime) -> None:
    add(hub, "p1", "p2")
    monday = next_monday()
    news, weekly = week_calendars(monday)
    cid = published_content(hub)
    with hub.db.session() as s:
        week = {"content_id": cid, "valid_until": monday + timedelta(days=7)}  # the runs go on past it
        s.add(programme(news, {"areas": ["27694"]}, **week))
        s.add(programme(weekly, {"devices": ["P1"]}, **week))
    clock = monday.astimezone(UTC) - timedelta(hours=2)
    first = Materialiser(hub, look_ahead=timedelta(hours=30))
    for _ in range(7):  # every 12 h, each run overlapping the one before
        first.run(clock)
        first.run(clock)  # twice at once: nothing new
        clock += timedelta(hours=12)
    restarted = Runtime(hub.settings, plugins=hub.plugins)  # a restart: nothing carried over but the database
    try:
        again = Materialiser(restarted, look_ahead=timedelta(hours=30))
        while clock < monday + timedelta(days=8):
            again.run(clock)
            clock += timedelta(hours=12)
    finally:
        restarted.close()
    with hub.db.session() as s:
        commands = list(s.scalars(select(Command).where(Command.issuer == ISSUER.name)))
        starts = sorted(c.start_at for c in commands)
        keys = [c.idempotency_key for c in commands]
        totals = {c.start_at: c.total for c in commands}
    assert starts == expected(monday)
    assert len(set(keys)) == len(keys)
    assert totals[expected(monday)[-1]] == 1 and totals[expected(monday)[0]] == 2  # Sunday reaches P1 only


def test_overlapping_programmes_are_reported_with_device_times_and_both_programmes(hub: Runtime) -> None:
    add(hub, "c1", "c2")
    monday = next_monday()
    news, weekly = week_calendars(monday)
    clash = new_calendar()
    clash.add_component(event("clash", monday.replace(hour=17, minute=10) + timedelta(days=1)))
    with hub.db.session() as s:
        a = programme(news, {"areas": ["27694"]})
        other_device = programme(to_text(clash), {"devices": ["C2"]})
        s.add_all([a, programme(weekly, {"devices": ["C1"]})])
        s.flush()
        found = conflicts(s, other_device, start=monday.astimezone(UTC))
    assert [(c.device_id, c.programme_id, c.other_programme_id, c.start, c.other_start) for c in found] == [
        ("C2", other_device.id, a.id, (monday + timedelta(days=1, hours=17, minutes=10)).astimezone(UTC),
         (monday + timedelta(days=1, hours=17)).astimezone(UTC))]
    assert "device C2" in str(found[0])
