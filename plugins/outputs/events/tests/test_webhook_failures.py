"""A failing receiver: retried with growing waits, then dead-lettered, visible, and replayed later."""
from __future__ import annotations

from collections.abc import Callable

from hub_output_events.storage import DeadLetterStore
from hub_output_events.webhook_output import WebhookOutput

from events_helpers import Receiver, device_events, wait_for


def test_500s_are_retried_with_growing_waits_then_delivered_in_order(
        receivers: Callable[[], Receiver], make_webhooks: Callable[..., WebhookOutput]) -> None:
    receiver = receivers()
    receiver.statuses = [500, 502, 503, 500]
    output = make_webhooks(receiver, backoff_initial_s=0.1, backoff_max_s=2)
    events = device_events(3)
    for event in events:
        output.handle(event)
    got = wait_for(lambda: len(receiver.delivered()) == 3 and receiver.delivered(), what="3 events")
    assert [b["sequence"] for b in got] == [1, 2, 3]
    attempts = receiver.attempts()
    assert [a["status"] for a in attempts[:5]] == [500, 502, 503, 500, 200]
    # the first event was tried five times, each wait at least half the doubled backoff
    assert {a["headers"]["X-Hub-Sequence"] for a in attempts[:5]} == {"1"}
    gaps = [b["at"] - a["at"] for a, b in zip(attempts[:5], attempts[1:5], strict=False)]
    for n, gap in enumerate(gaps):
        assert gap >= 0.1 * 2 ** n / 2 * 0.95, gaps
    assert gaps[3] > gaps[0]
    assert output.dead_letters() == []
    status = wait_for(lambda: (s := output.status()["destinations"][0])["delivered"] == 3 and s, what="the count")
    assert (status["failed_attempts"], status["consecutive_failures"]) == (4, 0)


def test_a_receiver_that_stays_down_is_dead_lettered_then_replayed(
        receivers: Callable[[], Receiver], make_webhooks: Callable[..., WebhookOutput]) -> None:
    receiver = receivers()
    receiver.statuses = [500] * 4  # failing, then gone altogether
    output = make_webhooks(receiver, max_attempts=4)
    output.start()
    wait_for(lambda: output.status()["destinations"][0]["state"] == "delivering", what="the lane")
    first = device_events(3)
    output.handle(first[0])
    wait_for(lambda: len(receiver.attempts()) >= 2, what="two 500s")
    receiver.down()
    for event in first[1:]:
        output.handle(event)
    dead = wait_for(lambda: len(output.dead_letters()) == 3 and output.dead_letters(), what="3 dead letters")
    assert [d["envelope"]["sequence"] for d in dead] == [1, 2, 3]
    assert all(d["destination"] == "ioc0" and d["attempts"] == 4 for d in dead)
    assert "HTTP 500" in dead[0]["reason"] or "Connection" in dead[0]["reason"]
    assert "ConnectionRefusedError" in dead[2]["reason"]
    health = output.health()
    assert not health.ok and "3 dead letters" in health.detail and "ioc0" in health.detail

    receiver.up()
    assert output.replay() == 3
    got = wait_for(lambda: len(receiver.delivered()) == 3 and receiver.delivered(), what="the replay")
    # the replay carries the original ids and sequence numbers, in order
    assert [b["sequence"] for b in got] == [1, 2, 3]
    assert [b["id"] for b in got] == [d["envelope"]["id"] for d in dead]
    assert output.dead_letters() == []
    wait_for(lambda: output.health().ok, what="health to recover")


def test_a_4xx_is_a_refusal_dead_lettered_at_once(receivers: Callable[[], Receiver],
                                                   make_webhooks: Callable[..., WebhookOutput]) -> None:
    receiver = receivers()
    receiver.statuses = [400]
    output = make_webhooks(receiver)
    for event in device_events(2):
        output.handle(event)
    wait_for(lambda: len(receiver.delivered()) == 1, what="the second event")
    [dead] = output.dead_letters()
    assert dead["attempts"] == 1 and dead["reason"].startswith("refused: HTTP 400")
    assert receiver.delivered()[0]["sequence"] == 2


def test_an_old_event_gives_up_at_max_age(receivers: Callable[[], Receiver],
                                          make_webhooks: Callable[..., WebhookOutput]) -> None:
    receiver = receivers()
    receiver.down()
    output = make_webhooks(receiver, max_attempts=1000, max_age_s=1, backoff_max_s=0.2)
    output.handle(device_events(1)[0])
    [dead] = wait_for(lambda: output.dead_letters(), timeout=5, what="a dead letter")
    assert 3 <= dead["attempts"] < 1000 and dead["reason"].startswith("gave up after")


def test_another_process_asks_for_a_replay_and_run_periodic_does_it(
        receivers: Callable[[], Receiver], make_webhooks: Callable[..., WebhookOutput], tmp_path) -> None:  # type: ignore[no-untyped-def]
    receiver = receivers()
    receiver.statuses = [410, 410]
    output = make_webhooks(receiver, state_dir=tmp_path / "shared")
    for event in device_events(3):
        output.handle(event)
    wait_for(lambda: len(output.dead_letters()) == 2 and len(receiver.delivered()) == 1, what="2 refusals")
    # the API process only has the state directory
    api_side = DeadLetterStore(tmp_path / "shared")
    keep, replay = api_side.list()
    assert api_side.request_replay({replay["dead_id"]}) == 1
    output.run_periodic(now=None)  # type: ignore[arg-type]
    wait_for(lambda: len(receiver.delivered()) == 2, what="the replayed event")
    assert receiver.delivered()[1]["id"] == replay["envelope"]["id"]
    assert [d["dead_id"] for d in output.dead_letters()] == [keep["dead_id"]]
    assert output.discard([keep["dead_id"]]) == 1 and output.dead_letters() == []


def test_a_full_queue_sends_the_overflow_to_the_dead_letters(receivers: Callable[[], Receiver],
                                                            make_webhooks: Callable[..., WebhookOutput]) -> None:
    receiver = receivers()
    receiver.delay_s = 0.3
    output = make_webhooks(receiver, max_queue=2)
    output.start()
    for event in device_events(8):
        output.handle(event)
    dead = output.dead_letters()
    assert dead and all(d["reason"].startswith("queue full") for d in dead)
    wait_for(lambda: len(receiver.delivered()) + len(dead) == 8, timeout=10, what="the rest")
