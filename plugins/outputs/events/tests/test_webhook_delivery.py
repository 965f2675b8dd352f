"""Webhook receivers on loopback get every event, signed, in order; handle() never waits for them."""
from __future__ import annotations

import time
from collections.abc import Callable

from hub.events import DeviceOffline
from hub.testing import scaled

from hub_output_events.signing import HEADER, verify
from hub_output_events.webhook_output import WebhookOutput

from events_helpers import SECRET, Receiver, device_events, wait_for


def test_receivers_get_every_event_in_order_with_id_and_sequence(
        receivers: Callable[[], Receiver], make_webhooks: Callable[..., WebhookOutput]) -> None:
    first, second = receivers(), receivers()
    output = make_webhooks(first, second)
    events = device_events(30)
    for event in events:
        output.handle(event)
    for receiver in (first, second):
        got = wait_for(lambda r=receiver: len(r.delivered()) == 30 and r.delivered(), what="30 events")
        assert [b["event"] for b in got] == [e.to_dict() for e in events]
        assert [b["type"] for b in got] == [e.type for e in events]
        assert [b["sequence"] for b in got] == list(range(1, 31))
    # one id and sequence per event, the same at every destination: a receiver can match them up
    assert [b["id"] for b in first.delivered()] == [b["id"] for b in second.delivered()]
    assert len({b["id"] for b in first.delivered()}) == 30
    assert output.health().ok and output.dead_letters() == []


def test_each_request_is_signed_and_says_what_it_carries(receivers: Callable[[], Receiver],
                                                          make_webhooks: Callable[..., WebhookOutput]) -> None:
    receiver = receivers()
    output = make_webhooks(receiver)
    output.handle(DeviceOffline(device_id="spk-001", previous="online", reason="heartbeat lost",
                                at=device_events(1)[0].at))
    request = wait_for(lambda: receiver.attempts(), what="a request")[0]
    headers, body = request["headers"], request["body"]
    assert verify(SECRET, headers[HEADER], body) <= time.time()
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["X-Hub-Event-Type"] == "device.offline"
    assert headers["X-Hub-Sequence"] == "1"
    assert headers["X-Hub-Event-Id"] == receiver.delivered()[0]["id"]


def test_handle_returns_at_once_while_a_destination_is_slow(receivers: Callable[[], Receiver],
                                                            make_webhooks: Callable[..., WebhookOutput]) -> None:
    slow, quick = receivers(), receivers()
    slow.delay_s = 0.5
    output = make_webhooks(slow, quick)
    output.start()
    events = device_events(10)
    started = time.monotonic()
    for event in events:
        output.handle(event)
    assert time.monotonic() - started < scaled(1.0)  # ten events, while each answer takes 0.5 s
    # the quick receiver is not held up behind the slow one
    wait_for(lambda: len(quick.delivered()) == 10, timeout=3, what="the quick receiver")
    assert len(slow.delivered()) < 10 and output.status()["destinations"][0]["queued"] > 0
    got = wait_for(lambda: len(slow.delivered()) == 10 and slow.delivered(), timeout=15, what="the slow receiver")
    assert [b["sequence"] for b in got] == list(range(1, 11))


def test_a_destination_gets_only_the_event_types_it_asked_for(receivers: Callable[[], Receiver],
                                                              make_webhooks: Callable[..., WebhookOutput]) -> None:
    devices, deliveries = receivers(), receivers()
    output = make_webhooks(webhooks=[
        {"name": "devices", "url": devices.url, "secret": SECRET, "events": ["device.*"]},
        {"name": "deliveries", "url": deliveries.url, "secret": SECRET, "events": ["delivery.changed"]}])
    for event in device_events(9):
        output.handle(event)
    wait_for(lambda: len(devices.delivered()) == 6 and len(deliveries.delivered()) == 3, what="filtered events")
    assert {b["type"] for b in devices.delivered()} == {"device.offline", "device.online"}
    assert {b["type"] for b in deliveries.delivered()} == {"delivery.changed"}


def test_events_queued_at_close_are_sent_after_a_restart(receivers: Callable[[], Receiver],
                                                         make_webhooks: Callable[..., WebhookOutput],
                                                         tmp_path) -> None:  # type: ignore[no-untyped-def]
    receiver = receivers()
    receiver.down()  # the receiver is away when the hub stops
    state = tmp_path / "restart"
    output = make_webhooks(receiver, state_dir=state)
    for event in device_events(5):
        output.handle(event)
    wait_for(lambda: output.status()["destinations"][0]["failed_attempts"] > 0, what="a failed attempt")
    output.close(timeout=5)
    receiver.up()
    again = make_webhooks(receiver, state_dir=state)
    again.handle(device_events(6)[5])
    got = wait_for(lambda: len(receiver.delivered()) == 6 and receiver.delivered(), what="6 events")
    # nothing lost, nothing out of order, and sequence numbers carry on from before
    assert [b["sequence"] for b in got] == [1, 2, 3, 4, 5, 6]
    assert again.dead_letters() == []
