"""The arbiter's rule stated once (hub.arbiter_rule), the simulator's copy held to it, and the
hub's supersede rule following it: a newer play never removes a waiting emergency, nor a waiting
lower-ranked play (it plays after), only what the device would replace."""
from __future__ import annotations

import itertools
import uuid

import pytest

from hub import arbiter_rule as rule
from hub.capabilities import PRIORITIES
from hub.store.db import utcnow
from hub.store.models import Content, Delivery
from tests.support.dispatch import add, send

VERBS = ("play", "relay_start")


def test_the_ranks_emergency_live_priority_normal_idle() -> None:
    assert rule.RANKS == ("idle", "normal", "priority", "live", "emergency")
    assert [rule.rank_name("relay_start", p) for p in PRIORITIES] == ["live", "live", "emergency"]
    assert rule.decide(("play", "emergency"), ("relay_start", "normal")) == rule.PREEMPT
    assert rule.decide(("relay_start", "priority"), ("play", "priority")) == rule.PREEMPT
    assert rule.decide(("play", "priority"), ("relay_start", "normal")) == rule.WAIT
    assert rule.decide(("play", "normal"), ("play", "priority")) == rule.WAIT
    assert rule.decide(("play", "emergency"), ("play", "emergency")) == rule.WAIT  # two emergencies queue
    assert rule.decide(("play", "normal"), ("play", "normal")) == rule.REPLACE


def test_the_simulated_speaker_holds_the_same_rule() -> None:
    playback = pytest.importorskip("hub_mqtt_speaker.playback")
    assert playback.RANKS == rule.RANKS
    for verb, p in itertools.product(VERBS, PRIORITIES):
        assert playback.rank_name("play" if verb == "play" else "relay", p) == rule.rank_name(verb, p)


def _content(rt) -> str:  # noqa: ANN001
    with rt.db.session() as s:
        c = Content(id=uuid.uuid4().hex, title="Bản tin", kind="audio_file", media={"uri": "http://127.0.0.1:9/a.mp3"},
                    created_by="t", created_at=utcnow())
        s.add(c)
    return c.id


def _state(rt, cid: str) -> str:  # noqa: ANN001
    with rt.db.session() as s:
        return s.query(Delivery).filter_by(command_id=cid).one().state


def test_a_waiting_play_gives_way_only_where_the_device_would_replace_it(hub) -> None:  # noqa: ANN001
    add(hub, "pending-1")
    play = lambda p: send(hub, {"verb": "play", "content_id": _content(hub), "priority": p,  # noqa: E731
                                "target": {"devices": ["PENDING-1"]}}).command.id
    first, second = play("emergency"), play("emergency")
    normal = play("normal")
    assert (_state(hub, first), _state(hub, second)) == ("queued", "queued")  # they queue
    newer = play("normal")
    assert _state(hub, normal) == "superseded"  # same rank: the newer one replaces it
    priority = play("priority")
    assert _state(hub, newer) == "queued"  # a lower rank waits, it is not removed
    stop = send(hub, {"verb": "stop", "priority": "priority", "target": {"devices": ["PENDING-1"]}}).command.id
    assert (_state(hub, newer), _state(hub, priority), _state(hub, stop)) == ("superseded", "superseded", "queued")
    assert _state(hub, first) == "queued"  # a stop of a lower class leaves the emergencies alone
