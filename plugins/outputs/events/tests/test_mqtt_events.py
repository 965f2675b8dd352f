"""An MQTT subscriber gets the events in order, on per-type subtopics, not retained; the output
reconnects after the broker goes away and loses nothing."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from hub.testing import scaled

from hub_output_events.mqtt_output import MqttEventOutput

from events_helpers import PrivateBroker, Subscriber, device_events, wait_for


def test_subscriber_gets_events_in_order_on_type_subtopics(broker: tuple[str, int], prefix: str,
                                                           make_mqtt: Callable[..., MqttEventOutput]) -> None:
    subscriber = Subscriber(*broker, prefix)
    try:
        output = make_mqtt()
        events = device_events(30)
        for event in events:
            output.handle(event)
        wait_for(lambda: len(subscriber.messages) >= 30, what="30 messages")
        topics = [t for t, _, _ in subscriber.messages]
        assert topics[:3] == [f"{prefix}/device/offline", f"{prefix}/device/online", f"{prefix}/delivery/changed"]
        assert subscriber.sequences() == list(range(1, 31))
        assert [p["event"] for _, p, _ in subscriber.messages] == [e.to_dict() for e in events]
        assert not any(retained for _, _, retained in subscriber.messages)
        assert output.health().ok and output.status()["connected"]
    finally:
        subscriber.stop()
    # not retained: who subscribes later finds nothing waiting
    late = Subscriber(*broker, prefix)
    try:
        time.sleep(0.5)
        assert late.messages == []
    finally:
        late.stop()


def test_only_the_configured_event_types_are_published(broker: tuple[str, int], prefix: str,
                                                       make_mqtt: Callable[..., MqttEventOutput]) -> None:
    subscriber = Subscriber(*broker, prefix)
    try:
        output = make_mqtt(events=["device.offline"])
        for event in device_events(9):
            output.handle(event)
        wait_for(lambda: len(subscriber.messages) >= 3, what="3 messages")
        time.sleep(0.3)
        assert {t for t, _, _ in subscriber.messages} == {f"{prefix}/device/offline"}
        assert len(subscriber.messages) == 3
    finally:
        subscriber.stop()


def test_the_output_reconnects_after_the_broker_restarts_and_keeps_order(
        tmp_path: Path, prefix: str, make_mqtt: Callable[..., MqttEventOutput]) -> None:
    broker = PrivateBroker(tmp_path / "broker").start()
    subscriber = Subscriber("127.0.0.1", broker.port, prefix, persistent=True)
    try:
        output = make_mqtt(host="127.0.0.1", port=broker.port)
        events = device_events(12)
        for event in events[:6]:
            output.handle(event)
        wait_for(lambda: len(subscriber.messages) >= 6, what="the first 6")
        broker.stop()
        wait_for(lambda: not output.status()["connected"], what="the output to notice")
        started = time.monotonic()
        for event in events[6:]:
            output.handle(event)
        assert time.monotonic() - started < scaled(1.0)  # handle() does not wait for the broker
        wait_for(lambda: not output.health().ok, what="health to say the broker is away")
        assert "not connected" in output.health().detail
        broker.start()
        wait_for(lambda: len(set(subscriber.sequences())) >= 12, timeout=30, what="all 12 after the restart")
        firsts = list(dict.fromkeys(subscriber.sequences()))  # at least once: drop repeats, keep order
        assert firsts == list(range(1, 13))
        assert output.dead_letters() == []
        wait_for(lambda: output.health().ok, what="health to recover")
    finally:
        subscriber.stop()
        broker.stop()


def test_handle_returns_at_once_when_no_broker_answers(make_mqtt: Callable[..., MqttEventOutput]) -> None:
    from hub.ports import free_port

    output = make_mqtt(host="127.0.0.1", port=free_port())  # nothing listens there
    started = time.monotonic()
    for event in device_events(100):
        output.handle(event)
    assert time.monotonic() - started < scaled(1.0)  # no connection attempt in the way
    wait_for(lambda: not output.health().ok, what="health to say so")
    assert output.status()["destinations"][0]["queued"] >= 99
