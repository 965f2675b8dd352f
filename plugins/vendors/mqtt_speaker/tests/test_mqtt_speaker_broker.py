"""Adapter and simulator talking through the real Mosquitto broker."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from hub.vendor import Outcome, TransientError

from hub_mqtt_speaker.adapter import MqttSpeakerAdapter
from hub_mqtt_speaker.device import SimDevice
from hub_mqtt_speaker.simulator import Fleet
from mqtt_speaker_helpers import RecordingSink, clear_retained, envelope, free_port, outgoing, wait_until

VIETNAMESE = "Thông báo khẩn: bão số 3"

MakeFleet = Callable[..., Fleet]
MakeAdapter = Callable[..., MqttSpeakerAdapter]


def test_batch_of_50_all_pending_then_50_acks(listening: MqttSpeakerAdapter, sink: RecordingSink,
                                               make_fleet: MakeFleet, token: str) -> None:
    addresses = [f"S{token}-{i:03d}" for i in range(50)]
    fleet = make_fleet([SimDevice(a) for a in addresses])
    sent = {a: envelope("play", content={"id": f"bulletin-{a}", "kind": "audio_file",
                                         "media_uri": "https://x/a.mp3", "duration_s": 1})
            for a in addresses}
    results = listening.send([outgoing(a, env) for a, env in sent.items()])
    assert len(results) == 50
    assert {r.device_id for r in results} == {f"dev-{a}" for a in addresses}
    assert all(r.outcome is Outcome.PENDING for r in results), [r for r in results if r.outcome is not Outcome.PENDING]
    assert sink.wait(lambda: len(sink.acks) >= 50, timeout=15), f"only {len(sink.acks)} acks"
    by_address = {addr: ack for addr, ack in sink.acks}
    assert set(by_address) == set(addresses)
    for a in addresses:
        assert by_address[a].command_id == sent[a].command_id
        assert by_address[a].ok is True
        assert fleet.device(a).command(sent[a].command_id) is not None
    assert sink.vendors == {"mqtt_speaker"}
    assert fleet.device(addresses[0]).activity == "playing"


def test_set_volume_read_back_in_ack_and_status(listening: MqttSpeakerAdapter, sink: RecordingSink,
                                               make_fleet: MakeFleet, token: str) -> None:
    addr = f"S{token}"
    fleet = make_fleet([SimDevice(addr, volume=50)])
    env = envelope("set_volume", {"level": 37})
    [result] = listening.send([outgoing(addr, env)])
    assert result.outcome is Outcome.PENDING
    assert sink.wait(lambda: sink.ack_by_id(env.command_id) is not None)
    ack = sink.ack_by_id(env.command_id)
    assert ack is not None and ack.ok and ack.detail is not None and ack.detail["volume"] == 37
    assert sink.wait(lambda: any(s["volume"] == 37 for s in sink.statuses_for(addr)))
    status = [s for s in sink.statuses_for(addr) if s["volume"] == 37][-1]
    assert status["online"] is True and status["reported_at"].tzinfo is not None
    assert fleet.device(addr).volume == 37


def test_led_text_arrives_byte_identical_and_speaker_refuses(listening: MqttSpeakerAdapter, sink: RecordingSink,
                                                             make_fleet: MakeFleet, token: str) -> None:
    board, speaker = f"L{token}", f"S{token}"
    fleet = make_fleet([SimDevice(board, kind="led_board"), SimDevice(speaker)])
    on_board = envelope("led_show", {"text": VIETNAMESE})
    on_speaker = envelope("led_show", {"text": VIETNAMESE})
    results = listening.send([outgoing(board, on_board, kind="led_board"), outgoing(speaker, on_speaker)])
    assert [r.outcome for r in results] == [Outcome.PENDING, Outcome.PENDING]
    assert sink.wait(lambda: sink.ack_by_id(on_board.command_id) and sink.ack_by_id(on_speaker.command_id))
    assert sink.ack_by_id(on_board.command_id).ok is True  # type: ignore[union-attr]
    refused = sink.ack_by_id(on_speaker.command_id)
    assert refused is not None and refused.ok is False and refused.reason == "unsupported verb"
    shown = fleet.device(board).led_text
    assert shown is not None and shown.encode("utf-8") == VIETNAMESE.encode("utf-8")
    assert VIETNAMESE.encode("utf-8") in fleet.device(board).commands[-1].raw
    assert fleet.device(speaker).led_text is None
    assert sink.wait(lambda: any(s["activity"] == "showing" for s in sink.statuses_for(board)))


def test_emergency_preempts_over_the_wire(listening: MqttSpeakerAdapter, sink: RecordingSink,
                                          make_fleet: MakeFleet, token: str) -> None:
    addr = f"S{token}"
    fleet = make_fleet([SimDevice(addr)])
    clip = {"id": "routine", "kind": "audio_file", "media_uri": "https://x/r.mp3", "duration_s": 60}
    storm = {"id": "storm", "kind": "audio_file", "media_uri": "https://x/s.mp3", "duration_s": 60}
    listening.send([outgoing(addr, envelope("play", content=clip))])
    assert wait_until(lambda: fleet.device(addr).source == "routine")
    listening.send([outgoing(addr, envelope("play", priority="emergency", content=storm))])
    assert wait_until(lambda: fleet.device(addr).source == "storm")
    later = envelope("play", priority="normal", content={**clip, "id": "later"})
    listening.send([outgoing(addr, later)])
    assert sink.wait(lambda: sink.ack_by_id(later.command_id) is not None)
    ack = sink.ack_by_id(later.command_id)
    assert ack is not None and ack.ok and ack.detail and ack.detail["queued"] is True
    assert fleet.device(addr).source == "storm"


def test_expired_envelope_is_refused(listening: MqttSpeakerAdapter, sink: RecordingSink,
                                     make_fleet: MakeFleet, token: str) -> None:
    addr = f"S{token}"
    make_fleet([SimDevice(addr)])
    env = envelope("set_volume", {"level": 10}, expires_in_s=-5)
    [result] = listening.send([outgoing(addr, env)])
    assert result.outcome is Outcome.PENDING  # the broker took it; only the device can judge expiry
    assert sink.wait(lambda: sink.ack_by_id(env.command_id) is not None)
    ack = sink.ack_by_id(env.command_id)
    assert ack is not None and not ack.ok and ack.reason == "expired"


def test_killed_device_goes_offline_through_last_will_and_back(listening: MqttSpeakerAdapter,
                                                              sink: RecordingSink, make_fleet: MakeFleet,
                                                              token: str) -> None:
    addr = f"S{token}"
    fleet = make_fleet([SimDevice(addr)])
    assert sink.wait(lambda: (addr, True) in sink.presence_events)
    fleet.kill(addr)
    assert sink.wait(lambda: (addr, False) in sink.presence_events, timeout=10), sink.presence_events
    assert not fleet.device(addr).connected
    before = len(sink.presence_events)
    fleet.revive(addr, timeout=10)
    assert sink.wait(lambda: (addr, True) in sink.presence_events[before:], timeout=10)
    assert fleet.device(addr).connected and fleet.device(addr).connects == 2


def test_malformed_payloads_do_not_stop_the_listener(listening: MqttSpeakerAdapter, sink: RecordingSink,
                                                     make_fleet: MakeFleet, token: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    addr = f"S{token}"
    fleet = make_fleet([SimDevice(addr)])
    caplog.set_level(logging.WARNING, logger="hub_mqtt_speaker")
    fleet.publish_as(addr, "status", b"{definitely not json")
    fleet.publish_as(addr, "status", b'{"online": true, "volume": 300, "ts": "2025-01-01T00:00:00Z"}')
    fleet.publish_as(addr, "ack", b"\xff\xfe garbage")
    fleet.publish_as(addr, "ack", b'{"ok": true}')
    fleet.publish_as(addr, "online", b"maybe")
    fleet.publish_as(addr, "whatever", b"ignored")  # not subscribed, must simply not arrive
    # The listener is still alive: a real command round-trips afterwards.
    env = envelope("set_volume", {"level": 64})
    listening.send([outgoing(addr, env)])
    assert sink.wait(lambda: sink.ack_by_id(env.command_id) is not None)
    assert wait_until(lambda: len([r for r in caplog.records if "dropped message" in r.getMessage()]) >= 5)
    dropped = [r.getMessage() for r in caplog.records if "dropped message" in r.getMessage()]
    assert all("\n" not in line for line in dropped)
    assert any(f"/{addr}/status" in line and "not JSON" in line for line in dropped)
    assert any(f"/{addr}/status" in line and "volume" in line for line in dropped)
    assert any(f"/{addr}/ack" in line and "UTF-8" in line for line in dropped)
    assert any(f"/{addr}/ack" in line and "id" in line for line in dropped)
    assert any(f"/{addr}/online" in line for line in dropped)
    assert all(s["volume"] != 300 for _, s in sink.statuses)


def test_faulty_sink_does_not_stop_the_listener(make_adapter: MakeAdapter, make_fleet: MakeFleet,
                                                token: str) -> None:
    class Flaky(RecordingSink):
        def status(self, vendor: str, address: str, status: dict[str, Any]) -> None:
            raise RuntimeError("database down")

    sink = Flaky()
    adapter = make_adapter()
    adapter.listen(sink)
    assert adapter.wait_subscribed(5)
    addr = f"S{token}"
    make_fleet([SimDevice(addr)])
    env = envelope("set_volume", {"level": 5})
    adapter.send([outgoing(addr, env)])
    assert sink.wait(lambda: sink.ack_by_id(env.command_id) is not None)


def test_broker_unreachable_raises_transient(make_adapter: MakeAdapter) -> None:
    port = free_port()
    adapter = make_adapter(open_=False, port=port, connect_timeout_s=2)
    began = time.monotonic()
    with pytest.raises(TransientError, match=rf"127\.0\.0\.1:{port} unreachable"):
        adapter.open()
    assert time.monotonic() - began < 5
    assert not adapter.health().ok
    with pytest.raises(TransientError, match="unreachable"):
        adapter.send([outgoing("X", envelope("stop"))])


def test_send_after_close_raises_transient(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    assert adapter.health().ok
    adapter.close()
    assert not adapter.health().ok
    with pytest.raises(TransientError):
        adapter.send([outgoing("X", envelope("stop"))])


def test_device_prefix_override_and_bad_address(listening: MqttSpeakerAdapter, sink: RecordingSink,
                                                make_fleet: MakeFleet, prefix: str, token: str) -> None:
    other = f"{prefix}-elsewhere"
    addr = f"S{token}"
    fleet = make_fleet([SimDevice(addr)], topic_prefix=other)
    env = envelope("set_volume", {"level": 12})
    results = listening.send([outgoing(addr, env, topic_prefix=other), outgoing("bad/addr", envelope("stop"))])
    by_id = {r.device_id: r for r in results}
    assert by_id[f"dev-{addr}"].outcome is Outcome.PENDING
    bad = by_id["dev-bad/addr"]
    assert bad.outcome is Outcome.FAILED and not bad.transient and "bad/addr" in (bad.reason or "")
    assert wait_until(lambda: fleet.device(addr).volume == 12)


def test_shared_group_splits_acks_between_ingest_processes(make_adapter: MakeAdapter, make_fleet: MakeFleet,
                                                          token: str) -> None:
    group = f"ingest{token}"
    sinks = [RecordingSink(), RecordingSink()]
    for s in sinks:
        a = make_adapter(shared_group=group)
        a.listen(s)
        assert a.wait_subscribed(5)
    sender = make_adapter()
    addresses = [f"S{token}-{i:02d}" for i in range(20)]
    make_fleet([SimDevice(a) for a in addresses])
    envs = {a: envelope("set_volume", {"level": 20}) for a in addresses}
    assert all(r.outcome is Outcome.PENDING for r in sender.send([outgoing(a, e) for a, e in envs.items()]))
    total = lambda: len(sinks[0].acks) + len(sinks[1].acks)  # noqa: E731
    assert wait_until(lambda: total() >= 20, timeout=10)
    time.sleep(0.3)  # a duplicate would arrive now
    ids = [ack.command_id for s in sinks for _, ack in s.acks]
    assert sorted(ids) == sorted(e.command_id for e in envs.values())
    # Presence is deliberately not shared: every ingest process sees every device come online.
    for s in sinks:
        assert wait_until(lambda s=s: {a for a, on in s.presence_events if on} >= set(addresses))


def test_stop_announces_offline(listening: MqttSpeakerAdapter, sink: RecordingSink, broker: tuple[str, int],
                                prefix: str, token: str) -> None:
    addresses = [f"S{token}-{i}" for i in range(3)]
    fleet = Fleet(broker[0], broker[1], prefix, [SimDevice(a) for a in addresses])
    try:
        fleet.start(timeout=10)
        assert sink.wait(lambda: {a for a, on in sink.presence_events if on} == set(addresses))
    finally:
        fleet.stop()
    assert sink.wait(lambda: {a for a, on in sink.presence_events if not on} == set(addresses))
    clear_retained(broker[0], broker[1], [f"{prefix}/{a}/online" for a in addresses])


def test_listener_reconnects_and_resubscribes(make_adapter: MakeAdapter, sink: RecordingSink,
                                              make_fleet: MakeFleet, broker: tuple[str, int], token: str) -> None:
    import paho.mqtt.client as mqtt

    client_id = f"hubtest-{token}"
    adapter = make_adapter(client_id=client_id)
    adapter.listen(sink)
    assert adapter.wait_subscribed(5)
    # A second connection with the same client id makes the broker drop the adapter's: the
    # way a real network blip looks from the adapter's side.
    usurper = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    usurper.connect(broker[0], broker[1])
    usurper.loop_start()
    try:
        assert wait_until(lambda: not adapter.health().ok, timeout=5)
    finally:
        usurper.disconnect()
        usurper.loop_stop()
    assert wait_until(lambda: adapter.health().ok, timeout=10), adapter.health().detail
    assert adapter.wait_subscribed(5)
    addr = f"S{token}"
    make_fleet([SimDevice(addr)])
    env = envelope("set_volume", {"level": 3})
    assert adapter.send([outgoing(addr, env)])[0].outcome is Outcome.PENDING
    assert sink.wait(lambda: sink.ack_by_id(env.command_id) is not None)


def test_kill_and_revive_are_idempotent(make_fleet: MakeFleet, token: str) -> None:
    addr = f"S{token}"
    fleet = make_fleet([SimDevice(addr)])
    began = time.monotonic()
    fleet.revive(addr)  # already connected: nothing to wait for
    assert time.monotonic() - began < 1
    fleet.kill(addr)
    fleet.kill(addr)
    fleet.revive(addr)
    assert fleet.device(addr).connected
    assert fleet.connected_count() == 1
