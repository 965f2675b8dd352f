"""The simulated firmware on its own: a fake clock instead of a broker, so timing is exact."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from collections.abc import Callable
from typing import Any

import pytest

from hub_mqtt_speaker import protocol
from hub_mqtt_speaker.device import Behaviour, SimDevice, set_faults, strip_diacritics


class FakeTimer:
    def __init__(self, when: float, fn: Callable[[], None]) -> None:
        self.when, self.fn, self.cancelled = when, fn, False

    def cancel(self) -> None:
        self.cancelled = True


class FakeHost:
    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[FakeTimer] = []
        self.acks: list[dict[str, Any]] = []
        self.statuses: list[tuple[str, str | None]] = []

    def call_later(self, delay: float, fn: Callable[[], None]) -> FakeTimer:
        t = FakeTimer(self.now + delay, fn)
        self.timers.append(t)
        return t

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            due = sorted((t for t in self.timers if not t.cancelled and t.when <= end), key=lambda t: t.when)
            if not due:
                break
            t = due[0]
            self.timers.remove(t)
            self.now = t.when
            t.fn()
        self.now = end

    def publish_ack(self, state: Any, payload: dict[str, Any]) -> None:
        self.acks.append(payload)

    def publish_status(self, state: Any) -> None:
        self.statuses.append((state.activity, state.source))


def make(kind: str = "speaker", **faults: Any) -> tuple[Behaviour, FakeHost]:
    host = FakeHost()
    return Behaviour(SimDevice("DEV1", kind=kind, **faults), host), host


def send(dev: Behaviour, verb: str, params: dict[str, Any] | None = None, priority: str = "normal",
         content: dict[str, Any] | None = None, expires_in: float = 300, cid: str | None = None) -> dict[str, Any]:
    cid = cid or uuid.uuid4().hex[:8]
    expires = datetime.now(timezone.utc) + timedelta(seconds=expires_in)
    host: FakeHost = dev.host  # type: ignore[assignment]
    before = len(host.acks)
    dev.on_command(protocol.encode(protocol.command_payload(cid, verb, params, priority, expires, content)))
    return host.acks[before] if len(host.acks) > before else {}


def clip(cid: str, seconds: float = 10) -> dict[str, Any]:
    return {"id": cid, "kind": "audio_file", "media_uri": f"https://x/{cid}.mp3", "duration_s": seconds}


def test_play_then_idle_after_duration() -> None:
    dev, host = make()
    ack = send(dev, "play", content=clip("news", 10))
    assert ack["ok"] is True and ack["state"]["activity"] == "playing"
    assert (dev.state.activity, dev.state.source) == ("playing", "news")
    host.advance(9.9)
    assert dev.state.activity == "playing"
    host.advance(0.2)
    assert (dev.state.activity, dev.state.source) == ("idle", None)
    assert host.statuses[-1] == ("idle", None)


def test_play_defaults_to_five_seconds_and_repeat_multiplies() -> None:
    dev, host = make()
    send(dev, "play", content={"id": "x"})
    host.advance(4.9)
    assert dev.state.activity == "playing"
    host.advance(0.2)
    assert dev.state.activity == "idle"
    send(dev, "play", {"repeat": 3}, content=clip("y", 2))
    host.advance(5.9)
    assert dev.state.activity == "playing"
    host.advance(0.2)
    assert dev.state.activity == "idle"


def test_emergency_preempts_and_lower_priorities_wait() -> None:
    dev, host = make()
    send(dev, "play", content=clip("routine", 60))
    ack = send(dev, "play", priority="emergency", content=clip("storm", 10))
    assert ack["ok"] and not ack["state"].get("queued")
    assert dev.state.source == "storm"  # at once, not after the routine bulletin
    q1 = send(dev, "play", priority="priority", content=clip("notice", 5))
    q2 = send(dev, "play", priority="normal", content=clip("music", 5))
    assert q1["ok"] and q1["state"]["queued"] is True
    assert q2["ok"] and q2["state"]["queued"] is True
    assert dev.state.source == "storm"
    host.advance(10.1)
    assert dev.state.source == "notice"  # the higher-ranked waiting item goes first
    host.advance(5)
    assert dev.state.source == "music"
    host.advance(5)
    assert dev.state.activity == "idle"


def test_ignore_priority_fault_plays_in_arrival_order() -> None:
    dev, host = make(ignore_priority=True)
    send(dev, "play", content=clip("routine", 30))
    ack = send(dev, "play", priority="emergency", content=clip("storm", 10))
    assert ack["ok"] and ack["state"]["queued"] is True
    assert dev.state.source == "routine"
    host.advance(30.1)
    assert dev.state.source == "storm"


def test_stop_relay_volume_power() -> None:
    dev, host = make()
    send(dev, "play", content=clip("a", 60))
    send(dev, "stop")
    assert (dev.state.activity, dev.state.source) == ("idle", None)
    ack = send(dev, "set_volume", {"level": 35})
    assert ack["state"]["volume"] == 35 and dev.state.volume == 35
    assert send(dev, "set_volume", {"level": 101})["ok"] is False
    send(dev, "relay_start", {"url": "icecast://radio/vov1"})
    assert (dev.state.activity, dev.state.source) == ("relaying", "icecast://radio/vov1")
    send(dev, "relay_stop")
    assert dev.state.activity == "idle"
    send(dev, "power", {"on": False})
    assert (dev.state.activity, dev.state.power) == ("off", False)
    assert send(dev, "play", content=clip("b"))["error"] == "power is off"
    send(dev, "power", {"on": True})
    assert dev.state.activity == "idle"


def test_led_board() -> None:
    dev, host = make("led_board")
    text = "Thông báo khẩn: bão số 3"
    ack = send(dev, "led_show", {"text": text})
    assert ack["ok"] and dev.state.led_text == text and dev.state.activity == "showing"
    send(dev, "set_brightness", {"level": 30})
    assert dev.state.brightness == 30
    send(dev, "led_clear")
    assert dev.state.led_text is None and dev.state.activity == "idle"
    assert send(dev, "play", content=clip("a"))["error"] == "unsupported verb"
    send(dev, "led_show", {"text": "Ngập lụt", "duration_s": 5})
    host.advance(5.1)
    assert dev.state.led_text is None


def test_led_show_from_content_and_nfc() -> None:
    dev, _ = make("led_board")
    decomposed = "Tho\u0302ng ba\u0301o"  # NFD as some keyboards produce it
    send(dev, "led_show", content={"id": "c9", "kind": "led_text", "body": decomposed})
    assert dev.state.led_text == "Thông báo" and dev.state.source == "c9"


def test_refusals() -> None:
    dev, _ = make()
    assert send(dev, "led_show", {"text": "x"}) ["error"] == "unsupported verb"
    assert send(dev, "dance")["error"].startswith("unknown verb")
    assert send(dev, "play", content=clip("late"), expires_in=-1)["error"] == "expired"
    assert dev.state.activity == "idle"


def test_duplicate_delivery_is_acked_again_but_acted_once() -> None:
    dev, host = make()
    first = send(dev, "play", content=clip("a", 10), cid="same")
    host.advance(5)
    again = send(dev, "play", content=clip("a", 10), cid="same")
    assert again == first
    host.advance(5.1)
    assert dev.state.activity == "idle"  # the redelivery did not restart the clip
    assert dev.state.commands[-1].duplicate


@pytest.mark.parametrize("switches, check", [
    ({"silent": True}, lambda dev, host, ack: ack == {} and dev.state.volume == 40 and host.statuses == []),
    ({"wrong_volume": True}, lambda dev, host, ack: ack["state"]["volume"] == 60 and dev.state.volume == 40),
    ({"ack_without_acting": True}, lambda dev, host, ack: ack["ok"] and dev.state.volume == 50),
    ({"reject_all": True}, lambda dev, host, ack: ack["error"] == "device fault" and dev.state.volume == 50),
])
def test_fault_switches(switches: dict[str, Any], check: Callable[..., bool]) -> None:
    dev, host = make(**switches)
    ack = send(dev, "set_volume", {"level": 40})
    assert check(dev, host, ack)


def test_ack_delay_and_mangle_text() -> None:
    dev, host = make("led_board", ack_delay_s=2.0, mangle_text=True)
    assert send(dev, "led_show", {"text": "Đường ngập, sạt lở"}) == {}
    host.advance(2.1)
    assert host.acks[-1]["ok"] is True
    assert dev.state.led_text == "Duong ngap, sat lo"
    assert strip_diacritics("Thông báo khẩn") == "Thong bao khan"


def test_set_faults_rejects_unknown_switch() -> None:
    spec = SimDevice("X")
    set_faults(spec, silent=True)
    assert spec.silent
    with pytest.raises(ValueError, match="volume_too_loud"):
        set_faults(spec, volume_too_loud=True)
    with pytest.raises(ValueError):
        SimDevice("bad/address")


def test_a_preempted_item_resumes_from_its_start_when_the_emergency_ends() -> None:
    dev, host = make()
    send(dev, "play", content=clip("programme", 20))
    host.advance(5)
    send(dev, "play", priority="emergency", content=clip("storm", 10))
    assert dev.state.source == "storm"
    host.advance(10.1)
    assert dev.state.source == "programme"  # resumed, not dropped
    host.advance(19)
    assert dev.state.source == "programme"  # from its start: its whole 20 s again
    host.advance(1.1)
    assert dev.state.activity == "idle"


def test_a_preempted_item_whose_slot_closed_is_not_resumed() -> None:
    import time

    dev, host = make()
    send(dev, "play", content=clip("programme", 20), expires_in=0.3)
    send(dev, "play", priority="emergency", content=clip("storm", 10))
    time.sleep(0.4)  # the programme's slot (its expires_at, on the real clock) closes meanwhile
    host.advance(10.1)
    assert dev.state.activity == "idle" and dev.state.interrupted == []


def test_two_emergencies_queue_and_a_relay_outranks_a_priority_play() -> None:
    dev, host = make()
    send(dev, "play", priority="emergency", content=clip("flood", 5))
    second = send(dev, "play", priority="emergency", content=clip("landslide", 5))
    assert second["state"]["queued"] is True and dev.state.source == "flood"  # not cut off
    host.advance(5.1)
    assert dev.state.source == "landslide"
    host.advance(5.1)
    send(dev, "relay_start", {"url": "http://127.0.0.1:9/live"}, priority="normal")
    assert send(dev, "play", priority="priority", content=clip("notice", 5))["state"]["queued"] is True
    assert dev.state.activity == "relaying"  # live ranks above priority
