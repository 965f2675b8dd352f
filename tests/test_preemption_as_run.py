"""The per-device arbiter and the as-run log, end to end: simulated MQTT speakers (real Mosquitto,
the real ingest and worker) that arbitrate locally, and a gateway whose devices the hub arbitrates.

A programme item plays; an emergency pre-empts it on exactly the devices it targets; the item
resumes there from its start while its slot is open; the as-run log — derived from acks and status
only — shows each segment with the interruption named, the plan beside it."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.access.actors import Actor
from hub.delivery.dispatch import submit
from hub.plugins import Plugins
from hub.schemas import CommandSchema
from hub.store.db import utcnow
from hub.testing import HubHarness, wait_until
from tests.support.as_run import segments, summary
from tests.support.services import MQTT_HOST, MQTT_PORT

pytest.importorskip("hub_mqtt_speaker")
from hub_mqtt_speaker.device import SimDevice  # noqa: E402 - after the skip
from hub_mqtt_speaker.simulator import Fleet  # noqa: E402

PROGRAMMES = Actor(name="scheduler:programmes")  # the issuer of programme commands (hub.broadcast.materialise)


@pytest.fixture
def speakers(tmp_path: Path, services: None) -> Iterator[tuple[HubHarness, Fleet, dict[str, str]]]:
    """A harness, three simulated speakers, and their addresses by device id."""
    prefix = f"hubtest/arbiter-{uuid.uuid4().hex[:8]}"
    plugins = Plugins()
    plugins.load_entry_points(only={"mqtt_speaker"})
    h = HubHarness(tmp_path, "mqtt_speaker", {"host": MQTT_HOST, "port": MQTT_PORT, "topic_prefix": prefix},
                   plugins=plugins, listen=False)
    h.start()
    token = uuid.uuid4().hex[:8]  # addresses are MQTT client ids: unique per run
    addresses = [f"arb-{token}-{i}" for i in range(3)]
    fleet = Fleet(MQTT_HOST, MQTT_PORT, prefix, [SimDevice(a) for a in addresses], status_interval=30)
    try:
        fleet.start(timeout=30)
        h.start_ingest()
        ids = [h.add_device(f"SPK-{i}", a) for i, a in enumerate(addresses)]
        h.run_worker()
        yield h, fleet, dict(zip(ids, addresses))
    finally:
        h.stop()
        fleet.stop(timeout=10, clear_retained=True)


def clip(h: HubHarness, name: str, seconds: float) -> str:
    return h.add_content(title=name, kind="audio_file", language="vi",
                         media={"uri": f"http://127.0.0.1:9/{name}.mp3", "duration_s": seconds})


def programme_item(h: HubHarness, devices: list[str], content_id: str, slot_s: float) -> Any:
    """A programme's play as the materialiser makes it: class normal, expiring at its slot's end."""
    raw = {"verb": "play", "content_id": content_id, "target": {"devices": devices}, "priority": "normal",
           "expires_at": (utcnow() + timedelta(seconds=slot_s)).isoformat(),
           "idempotency_key": f"programme:p1:{uuid.uuid4().hex[:6]}"}
    with h._work_lock:
        sub = submit(h.rt, PROGRAMMES, CommandSchema().load(raw))
        h.work()
    return sub.command


def played(h: HubHarness, device: str, n: int, timeout: float = 30) -> list[Any]:
    assert wait_until(lambda: len([g for g in segments(h.rt, device) if g.outcome != "playing"]) >= n, timeout), \
        summary(h.rt, device)
    return segments(h.rt, device)


def test_an_emergency_preempts_only_its_devices_and_the_programme_resumes(speakers) -> None:  # noqa: ANN001
    h, fleet, where = speakers
    a, b, c = where
    programme = programme_item(h, [a, b, c], clip(h, "ban-tin-sang", 4), slot_s=60)
    assert wait_until(lambda: all(segments(h.rt, d) for d in (a, b, c)), 10)
    emergency = h.send("play", [a, b], content_id=clip(h, "bao-so-3", 2), priority="emergency").command

    for device in (a, b):
        got = played(h, device, 3)
        assert [(g.command_id, g.outcome) for g in got] == [
            (programme.id, "interrupted"), (emergency.id, "finished"), (programme.id, "finished")], summary(h.rt, device)
        cut, alert, resumed = got
        assert (cut.interrupted_by, cut.interrupted_by_class) == (emergency.id, "emergency")
        assert cut.follow_up == "resumed" and resumed.resume_of == programme.id
        assert cut.ended_at <= alert.started_at < alert.ended_at <= resumed.started_at
        # the resumed item played from its start: its whole length again
        assert (resumed.ended_at - resumed.started_at).total_seconds() >= 3
        for g in (cut, resumed):  # the plan beside what happened
            assert g.planned_expires_at == programme.expires_at and g.programme_key == programme.idempotency_key
        assert alert.rank == "emergency" and cut.rank == "normal"
    untargeted = played(h, c, 1)
    assert [(g.command_id, g.outcome, g.interrupted_by) for g in untargeted] == [(programme.id, "finished", None)]
    assert fleet.device(where[c]).command(emergency.id) is None  # never sent where not targeted


def test_a_lower_class_waits_and_never_interrupts(speakers) -> None:  # noqa: ANN001
    h, fleet, where = speakers
    a = next(iter(where))
    emergency = h.send("play", [a], content_id=clip(h, "khan", 3), priority="emergency").command
    assert wait_until(lambda: segments(h.rt, a), 10)
    for cls in ("normal", "priority"):
        later = h.send("play", [a], content_id=clip(h, f"tin-{cls}", 1), priority=cls).command
        assert h.wait(later.id)[a].state == "acked"  # the device took it, to play after
    got = played(h, a, 3)
    # the emergency ran its length; then the priority bulletin, then the normal one
    assert [(g.priority, g.outcome) for g in got][:3] == [("emergency", "finished"), ("priority", "finished"),
                                                          ("normal", "finished")], summary(h.rt, a)
    assert got[0].command_id == emergency.id and got[0].interrupted_by is None


def test_two_emergencies_queue_and_neither_cancels_the_other(speakers) -> None:  # noqa: ANN001
    h, fleet, where = speakers
    a = next(iter(where))
    raw = lambda cid: {"verb": "play", "content_id": cid, "priority": "emergency",  # noqa: E731
                       "target": {"devices": [a]}}
    with h._work_lock:  # both submitted before any is sent: the second must not supersede the first
        first = submit(h.rt, PROGRAMMES, CommandSchema().load(raw(clip(h, "lu", 2)))).command
        second = submit(h.rt, PROGRAMMES, CommandSchema().load(raw(clip(h, "sat-lo", 2)))).command
        h.work()
    assert h.wait(first.id)[a].state == "acked" and h.wait(second.id)[a].state == "acked"
    got = played(h, a, 2)
    assert [(g.command_id, g.outcome) for g in got] == [(first.id, "finished"), (second.id, "finished")]
    assert got[0].ended_at <= got[1].started_at


def test_an_interrupted_item_whose_slot_closed_is_recorded_skipped(speakers) -> None:  # noqa: ANN001
    h, fleet, where = speakers
    a = next(iter(where))
    programme = programme_item(h, [a], clip(h, "tin-ngan", 6), slot_s=3)
    assert wait_until(lambda: segments(h.rt, a), 10)
    emergency = h.send("play", [a], content_id=clip(h, "khan-dai", 4), priority="emergency").command
    got = played(h, a, 3)
    assert [(g.command_id, g.outcome) for g in got] == [
        (programme.id, "interrupted"), (emergency.id, "finished"), (programme.id, "skipped")], summary(h.rt, a)
    cut, _alert, skipped = got
    assert cut.follow_up == "skipped" and skipped.started_at is None
    assert "slot closed" in skipped.reason and skipped.interrupted_by == emergency.id
    assert fleet.device(where[a]).activity == "idle"  # the device did not play it again
