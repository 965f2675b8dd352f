"""Dispatch and the send job: every selected device ends in exactly one visible state."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from hub.access.actors import LOCAL_ADMIN, Actor
from hub.store.db import utcnow
from hub.delivery.dispatch import DispatchError, counts, submit
from hub.store.models import Command, Delivery
from hub.fleet.registry import upsert_device
from hub.schemas import CommandSchema
from hub.delivery.worker import make_worker
from tests import loopback_vendor
from tests.loopback_vendor import LoopbackAdapter


def add(rt, *addresses: str, area: str = "27694", **extra) -> None:
    with rt.db.session() as s:
        for a in addresses:
            upsert_device(s, rt.plugins, {"id": a.upper(), "vendor": "loopback", "kind": "speaker",
                                          "area_code": area, "address": a, "tags": [], **extra})


def send(rt, raw: dict, actor: Actor = LOCAL_ADMIN):
    return submit(rt, actor, CommandSchema().load(raw))


def work(rt) -> None:
    make_worker(rt).work(burst=True, logging_level="WARNING")


def states(rt, cid: str) -> dict[str, tuple[str, str | None]]:
    with rt.db.session() as s:
        return {d.device_id: (d.state, d.reason) for d in s.scalars(select(Delivery).where(Delivery.command_id == cid))}


def test_one_job_per_adapter_batch_not_per_device(hub) -> None:
    add(hub, *[f"ok-{i}" for i in range(25)])
    hub.settings.batch_size = 10
    sub = send(hub, {"verb": "set_volume", "params": {"level": 30}, "target": {"areas": ["794"]}})
    assert sub.counts["queued"] == 25 and hub.queue("normal").count == 3
    work(hub)
    assert [len(c) for c in loopback_vendor.CALLS] == [10, 10, 5]
    assert Counter(s for s, _ in states(hub, sub.command.id).values()) == {"acked": 25}


def test_pending_rows_wait_as_sent_until_an_ack_or_expiry(hub) -> None:
    add(hub, "pending-1")
    sub = send(hub, {"verb": "stop", "target": {"devices": ["PENDING-1"]}})
    work(hub)
    assert states(hub, sub.command.id) == {"PENDING-1": ("sent", None)}


def test_transient_failure_is_retried_then_acked(hub) -> None:
    add(hub, "flaky-1", "ok-1")
    sub = send(hub, {"verb": "stop", "target": {"areas": ["27694"]}})
    work(hub)
    assert {k: v[0] for k, v in states(hub, sub.command.id).items()} == {"FLAKY-1": "acked", "OK-1": "acked"}
    assert LoopbackAdapter.attempts == {"flaky-1": 2, "ok-1": 1}  # only the failed device is sent again


def test_retries_end_failed_with_the_reason_after_the_configured_attempts(hub) -> None:
    add(hub, "down-1", "refuse-1")
    sub = send(hub, {"verb": "stop", "target": {"areas": ["27694"]}})
    work(hub)
    got = states(hub, sub.command.id)
    assert got["DOWN-1"] == ("failed", "gave up after 3 attempts: HTTP 503 from gateway")
    assert got["REFUSE-1"] == ("failed", "device rejected the command")
    assert LoopbackAdapter.attempts == {"down-1": 3, "refuse-1": 1}


def test_an_adapter_that_raises_fails_its_batch_with_the_error_and_the_worker_goes_on(hub) -> None:
    add(hub, "crash-1", area="27694")
    add(hub, "ok-1", area="28099")
    crashed = send(hub, {"verb": "stop", "target": {"areas": ["27694"]}})
    fine = send(hub, {"verb": "stop", "target": {"areas": ["28099"]}})
    work(hub)
    state, reason = states(hub, crashed.command.id)["CRASH-1"]
    assert state == "failed" and reason == "gave up after 3 attempts: adapter error: RuntimeError: vendor library blew up"
    assert states(hub, fine.command.id) == {"OK-1": ("acked", None)}


def test_devices_lacking_the_verb_are_unsupported_and_disabled_ones_fail_visibly(hub) -> None:
    add(hub, "ok-1")
    add(hub, "ok-2", capabilities=["audio.play_url"])
    add(hub, "ok-3", admin_state="disabled")
    sub = send(hub, {"verb": "set_volume", "params": {"level": 10}, "target": {"areas": ["27694"]}})
    work(hub)
    got = states(hub, sub.command.id)
    assert got == {"OK-1": ("acked", None), "OK-2": ("unsupported", "device lacks audio.volume"),
                   "OK-3": ("failed", "device disabled by administrator")}


def test_a_newer_command_supersedes_a_queued_one_for_the_same_thing(hub) -> None:
    add(hub, "ok-1", "ok-2")
    first = send(hub, {"verb": "set_volume", "params": {"level": 10}, "target": {"areas": ["27694"]}})
    second = send(hub, {"verb": "set_volume", "params": {"level": 90}, "target": {"devices": ["OK-1"]}})
    led = send(hub, {"verb": "stop", "target": {"devices": ["OK-2"]}})  # another slot: no effect on volume
    work(hub)
    assert states(hub, first.command.id) == {"OK-1": ("superseded", f"superseded by command {second.command.id}"),
                                             "OK-2": ("acked", None)}
    assert states(hub, second.command.id) == {"OK-1": ("acked", None)}
    assert states(hub, led.command.id) == {"OK-2": ("acked", None)}


def test_a_normal_command_does_not_supersede_a_queued_emergency(hub) -> None:
    add(hub, "ok-1")
    urgent = send(hub, {"verb": "stop", "priority": "emergency", "target": {"devices": ["OK-1"]}})
    send(hub, {"verb": "stop", "target": {"devices": ["OK-1"]}})
    work(hub)
    assert states(hub, urgent.command.id) == {"OK-1": ("acked", None)}


def test_emergency_jobs_run_before_queued_normal_ones(hub) -> None:
    add(hub, "ok-1", "ok-2")
    send(hub, {"verb": "stop", "target": {"devices": ["OK-1"]}})
    send(hub, {"verb": "stop", "priority": "emergency", "target": {"devices": ["OK-2"]}})
    work(hub)
    assert loopback_vendor.CALLS == [["ok-2"], ["ok-1"]]


def test_an_expired_command_is_not_sent(hub) -> None:
    add(hub, "ok-1")
    sub = send(hub, {"verb": "stop", "target": {"devices": ["OK-1"]},
                     "expires_at": (utcnow() + timedelta(seconds=1)).isoformat()})
    with hub.db.session() as s:  # time passes before a worker picks the job up
        s.get(Command, sub.command.id).expires_at = utcnow() - timedelta(seconds=1)
    work(hub)
    assert states(hub, sub.command.id) == {"OK-1": ("expired", "expired before it could be sent")}
    assert loopback_vendor.CALLS == []


def test_an_unreachable_queue_fails_rows_visibly(hub) -> None:
    from redis import Redis

    add(hub, "ok-1")
    hub._redis = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)  # nothing listens on port 1
    sub = send(hub, {"verb": "stop", "target": {"devices": ["OK-1"]}})
    state, reason = states(hub, sub.command.id)["OK-1"]
    assert state == "failed" and reason.startswith("job queue unavailable")
    hub._redis = None


def test_idempotency_key_replays_and_refuses_a_different_body(hub) -> None:
    add(hub, "ok-1")
    raw = {"verb": "stop", "idempotency_key": "k1", "target": {"devices": ["OK-1"]}}
    a, b = send(hub, raw), send(hub, raw)
    assert a.command.id == b.command.id and not b.created
    with pytest.raises(DispatchError) as err:
        send(hub, {**raw, "priority": "emergency"})
    assert err.value.status == 409 and err.value.field == "idempotency_key"
    with hub.db.session() as s:
        assert len(s.scalars(select(Command)).all()) == 1


def test_an_actor_limited_to_one_commune_cannot_reach_another(hub) -> None:
    add(hub, "ok-1", area="27694")
    add(hub, "ok-2", area="28099")
    op = Actor(name="op-27694", roles=frozenset({"operator"}), areas=frozenset({"27694"}))
    for target in ({"areas": ["28099"]}, {"areas": ["794"]}, {"devices": ["OK-2"]}, {"areas": ["27694", "807"]}):
        with pytest.raises(DispatchError) as err:
            send(hub, {"verb": "stop", "target": target}, actor=op)
        assert err.value.status == 403
    with hub.db.session() as s:
        assert s.scalars(select(Command)).all() == []
    ok = send(hub, {"verb": "stop", "target": {"areas": ["27694"]}}, actor=op)
    assert ok.command.total == 1


def test_unknown_references_name_the_field(hub) -> None:
    for target, field in (({"areas": ["99999"]}, "target.areas"), ({"devices": ["NOPE"]}, "target.devices"),
                          ({"groups": ["g"]}, "target.groups")):
        with pytest.raises(DispatchError) as err:
            send(hub, {"verb": "stop", "target": target})
        assert err.value.field == field
    with pytest.raises(DispatchError, match="content_id"):
        send(hub, {"verb": "play", "content_id": "missing", "target": {"areas": ["80"]}})


def test_counts_cover_every_state(hub) -> None:
    add(hub, "ok-1")
    sub = send(hub, {"verb": "stop", "target": {"areas": ["80"]}})
    with hub.db.session() as s:
        assert set(counts(s, sub.command.id)) == {"scheduled", "queued", "sent", "acked", "failed", "expired", "unsupported",
                                                  "superseded"}


def test_a_schedule_with_slot_times_is_accepted_and_stored(hub) -> None:
    add(hub, "ok-1")
    cid = hub_content(hub)
    start = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    sub = send(hub, {"verb": "sync_schedule", "params": {"slots": [{"content_id": cid, "start": start.isoformat()}]},
                     "target": {"devices": ["OK-1"]}})
    with hub.db.session() as s:
        stored = s.get(Command, sub.command.id).params["slots"][0]
    assert stored["start"] == start.isoformat()
    assert states(hub, sub.command.id) == {"OK-1": ("unsupported", "device lacks audio.local_schedule")}


def hub_content(rt) -> str:
    import uuid

    from hub.store.models import Content

    with rt.db.session() as s:
        c = Content(id=uuid.uuid4().hex, title="Chương trình phát thanh", kind="tts_text", body="…",
                    created_by="t", created_at=utcnow())
        s.add(c)
    return c.id
