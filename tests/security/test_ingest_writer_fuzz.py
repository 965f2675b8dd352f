"""Hypothesis on the ingest's writer itself, past every parser: status reports, presence and
acks holding lone surrogates, times at the edges of (and beyond) what a database stores, numbers
too big for any column, mixed with good ones. Whatever comes, a flush must not fail, every
item must be confirmed exactly once (committed or quarantined), the good ones must be stored
and only bad ones quarantined — on SQLite and on PostgreSQL."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from hub.delivery.ingest import Ingest
from hub.schemas.status import REPORTED_FIELDS
from hub.store.models import Delivery, DeviceStatus, IngestQuarantine
from tests.support.ingest_fixtures import database_url, runtime_with_devices, sent_command  # noqa: F401

pytestmark = pytest.mark.timeout(600)

GOOD_TS = datetime(2026, 12, 5, 8, 0, tzinfo=timezone.utc)
zones = st.sampled_from([timezone.utc, timezone(timedelta(hours=-1)), timezone(timedelta(hours=14)),
                         timezone(timedelta(hours=-12)), timezone(timedelta(hours=7))])
extreme_times = (st.datetimes(min_value=datetime.min, max_value=datetime.max, timezones=zones)
                 | st.sampled_from([datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1))),
                                    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
                                    datetime.max.replace(tzinfo=timezone.utc)]))
# st.characters() leaves surrogates out unless told: here they are in
wild_text = (st.text(st.characters(exclude_categories=()), max_size=40)
             | st.sampled_from(["amp \ud800", "\udfff", "ok \ud83d", "x" * 5000]))
huge = st.integers(min_value=-2**80, max_value=2**80) | st.sampled_from([2**63, -2**63 - 1, 2**31])
wild = st.recursive(st.none() | st.booleans() | huge | st.floats() | wild_text | extreme_times,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(wild_text, inner, max_size=3),
                    max_leaves=8)
FIELDS = REPORTED_FIELDS
bad_status = st.dictionaries(st.sampled_from(FIELDS), wild, min_size=1).map(
    lambda d: {"online": True, "reported_at": GOOD_TS, **d})


@dataclass(frozen=True)
class RawAck:
    """What a careless plugin could hand the sink: an ack no parser checked."""

    command_id: Any
    ok: Any
    reason: Any = None
    detail: Any = None


bad_ack = st.builds(RawAck, command_id=wild_text, ok=st.booleans(), reason=wild_text | st.none(),
                    detail=st.none() | st.dictionaries(wild_text, wild, max_size=3))
bad_item = st.tuples(st.sampled_from(["status", "ack", "presence"]), bad_status | bad_ack | wild)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def test_one_bad_item_never_blocks_the_batch(database_url: str) -> None:  # noqa: F811
    rt, ids = runtime_with_devices(database_url, 30)
    good, bad = ids[:20], ids[20:]
    ing = Ingest(rt, vendors=[])
    seen = {"examples": 0, "quarantined": 0}

    @FUZZ
    @given(poison=st.lists(bad_item, min_size=1, max_size=6), position=st.integers(0, 40),
           volume=st.integers(0, 100))
    def run(poison: list[tuple[str, Any]], position: int, volume: int) -> None:
        cid = sent_command(rt, good)
        confirmed: list[int] = []
        items: list[tuple[str, str, Any]] = []
        for i, did in enumerate(good):  # good: an ack and a status from each good device
            items.append(("ack", did, RawAck(cid, True)))
            items.append(("status", did, {"online": True, "volume": volume, "faults": [],
                                          "reported_at": GOOD_TS + timedelta(seconds=seen["examples"])}))
        for j, (kind, value) in enumerate(poison):
            items.insert(min(position + j, len(items)), (kind, bad[j % len(bad)], value))
        for n, (kind, did, value) in enumerate(items):
            getattr(ing.sink, kind)("loopback", did.lower(), value, done=lambda n=n: confirmed.append(n))
        before = _quarantined(rt)
        while ing.flush():
            pass
        assert sorted(confirmed) == list(range(len(items))), "every item confirmed exactly once"
        added = _quarantined(rt) - before
        assert added <= len(poison), "only bad items are quarantined"
        seen["examples"] += 1
        seen["quarantined"] += added
        with rt.db.session() as s:
            states = dict(s.execute(select(Delivery.state, func.count()).where(Delivery.command_id == cid)
                                    .group_by(Delivery.state)).all())
            volumes = set(s.scalars(select(DeviceStatus.volume).where(DeviceStatus.device_id.in_(good))))
        assert states == {"acked": len(good)}, states
        assert volumes == {volume}

    try:
        run()
        # the writer still writes after all that, and its counters add up
        assert ing.flush() == 0 and ing.sink.buffer.empty()
        assert ing.stats["quarantined"] == seen["quarantined"]
        print(f"\n{database_url.split(':')[0]}: {seen}")
        assert seen["quarantined"] > 0, "the strategies never produced an item the database refuses"
    finally:
        rt.db.dispose()


def _quarantined(rt) -> int:  # noqa: ANN001
    with rt.db.session() as s:
        return s.scalar(select(func.count(IngestQuarantine.id))) or 0


def test_a_device_listing_many_faults_is_stored_not_quarantined(database_url: str) -> None:  # noqa: F811
    """The health verdict's reason lists the faults; PostgreSQL holds 300 characters of it."""
    rt, ids = runtime_with_devices(database_url, 1)
    ing = Ingest(rt, vendors=[])
    faults = [f"fault {i:02d} " + "x" * 90 for i in range(20)]
    ing.sink.status("loopback", ids[0].lower(), {"online": True, "faults": faults, "reported_at": GOOD_TS})
    try:
        while ing.flush():
            pass
        assert ing.stats["quarantined"] == 0 and ing.stats["status"] == 1
        with rt.db.session() as s:
            row = s.get(DeviceStatus, ids[0])
            assert row.faults == faults and row.operating_state == "degraded" and len(row.state_reason) == 300
    finally:
        rt.db.dispose()
