"""How one simulated IP speaker or LED board behaves, independent of the network.

The `Fleet` in simulator.py feeds commands in and publishes what comes out; everything here
runs on the fleet's single loop thread. No `hub` import: the simulator stands alone.
"""
from __future__ import annotations

import logging
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from hub_mqtt_speaker import protocol, stream
from hub_mqtt_speaker.fetch import MediaFetch
from hub_mqtt_speaker.playback import Playback, Playing

log = logging.getLogger(__name__)

SPEAKER_VERBS = frozenset({"play", "stop", "set_volume", "relay_start", "relay_stop", "power"})
LED_VERBS = frozenset({"led_show", "led_clear", "set_brightness", "power"})
# Verbs of the hub's vocabulary this hardware has no use for; unsupported rather than unknown.
OTHER_KNOWN_VERBS = frozenset({"sync_schedule"})
KIND_VERBS = {"speaker": SPEAKER_VERBS, "led_board": LED_VERBS}

DEFAULT_PLAY_S = 5.0
_REMEMBERED_ACKS = 2000  # enough to answer QoS 1 redeliveries without growing for ever


@dataclass
class SimDevice:
    """A simulated device: identity, initial settings and fault switches.

    Fault switches may be changed while the fleet runs (`Fleet.set_faults`)."""

    address: str
    kind: str = "speaker"  # speaker | led_board
    volume: int = 50
    brightness: int = 80
    firmware: str = "1.4.2"
    network: str = "4g"
    rssi_dbm: int = -71
    quality: int = 80
    fault_flags: list[str] = field(default_factory=list)  # reported in status.faults
    # A board's text slot in bytes of UTF-8 (None: unlimited). Like many real boards it keeps what
    # fits and acks all the same, which is why the hub checks the length first (hub/delivery/led_fit.py).
    text_max_bytes: int | None = None
    # Fetch a play's audio (http/https media_uri) before acking, as a real speaker must; a refused
    # fetch is a nack. Off by default: many tests name audio at URLs nothing serves.
    fetch_media: bool = False
    # -- fault switches (for the conformance suite) --
    silent: bool = False  # receives and acts but never acks nor sends status
    ack_delay_s: float = 0.0
    no_heartbeat: bool = False  # status on change only, never periodically
    wrong_volume: bool = False  # reports volume off by 20
    ignore_priority: bool = False  # plays strictly in arrival order; emergency waits its turn
    mangle_text: bool = False  # LED text stored without diacritics
    ack_without_acting: bool = False  # acks ok, changes nothing
    reject_all: bool = False  # acks ok=false "device fault"

    def __post_init__(self) -> None:
        if self.kind not in KIND_VERBS:
            raise ValueError(f"device {self.address}: kind must be speaker or led_board, not {self.kind!r}")
        problem = protocol.address_problem(self.address)
        if problem:
            raise ValueError(problem)


FAULT_SWITCHES = ("silent", "ack_delay_s", "no_heartbeat", "wrong_volume", "ignore_priority",
                  "mangle_text", "ack_without_acting", "reject_all")


@dataclass
class ReceivedCommand:
    """One command as the device got it, and what it answered."""

    id: str | None
    verb: str | None
    priority: str | None
    params: dict[str, Any]
    content: dict[str, Any] | None
    received_at: datetime
    raw: bytes = field(repr=False, default=b"")
    ok: bool | None = None
    error: str | None = None
    queued: bool = False
    duplicate: bool = False  # a redelivery of an id already answered
    fetch: MediaFetch | None = None  # the audio it fetched for this command (fetch_media devices)


@dataclass
class DeviceState:
    """What a simulated device currently does; read it from tests through `Fleet.device()`."""

    spec: SimDevice
    volume: int | None
    brightness: int | None
    activity: str = "idle"
    source: str | None = None
    power: bool = True
    led_text: str | None = None
    connected: bool = False
    commands: list[ReceivedCommand] = field(default_factory=list)
    fetches: list[MediaFetch] = field(default_factory=list)  # every audio fetch, oldest first
    streams: list[stream.RelayStream] = field(default_factory=list)  # every relay stream opened, oldest first
    queue: list[Playback] = field(default_factory=list)
    current: Playback | None = None
    interrupted: list[Playback] = field(default_factory=list)  # pre-empted, to resume (playback.py)
    statuses_sent: int = 0
    acks_sent: int = 0
    connects: int = 0

    @property
    def address(self) -> str:
        return self.spec.address

    @property
    def kind(self) -> str:
        return self.spec.kind

    def command(self, command_id: str) -> ReceivedCommand | None:
        for cmd in reversed(self.commands):
            if cmd.id == command_id:
                return cmd
        return None


class Timer(Protocol):
    def cancel(self) -> None: ...


class Host(Protocol):
    """What a device needs from the fleet that runs it."""

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer: ...

    def publish_ack(self, state: DeviceState, payload: dict[str, Any]) -> None: ...

    def publish_status(self, state: DeviceState) -> None: ...

    def fetch_media(self, url: str, sha256: str | None, done: Callable[[MediaFetch], None]) -> None:
        """Fetch off the loop thread, then call `done` on it."""


class _Refused(Exception):
    """A command the device answers with ok=false."""


def strip_diacritics(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", bare.replace("đ", "d").replace("Đ", "D"))


def _level(params: dict[str, Any]) -> int:
    level = params.get("level")
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 100:
        raise _Refused("bad params: level must be an integer 0-100")
    return level


class Behaviour(Playing):
    """The device's firmware: turns commands into state changes, acks and status (what plays
    and what pre-empts what: hub_mqtt_speaker.playback)."""

    def __init__(self, spec: SimDevice, host: Host) -> None:
        self.state = DeviceState(spec=spec,
                                 volume=spec.volume if spec.kind == "speaker" else None,
                                 brightness=spec.brightness if spec.kind == "led_board" else None)
        self.host = host
        self._answers: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._end_timer: Timer | None = None
        self._led_timer: Timer | None = None
        self._seq = 0
        self._fetching: set[str] = set()  # commands whose audio is on its way; their answer follows

    @property
    def spec(self) -> SimDevice:
        return self.state.spec

    # -- status ------------------------------------------------------------------------------

    def reported_volume(self) -> int | None:
        v = self.state.volume
        if v is None or not self.spec.wrong_volume:
            return v
        return v + 20 if v <= 80 else v - 20

    def status_payload(self) -> dict[str, Any]:
        s, spec = self.state, self.spec
        return {
            "online": True,
            "activity": s.activity,
            "source": s.source,
            "volume": self.reported_volume(),
            "brightness": s.brightness,
            "power": s.power,
            "signal": {"network": spec.network, "rssi_dbm": spec.rssi_dbm, "quality": spec.quality},
            "faults": list(spec.fault_flags),
            "firmware": spec.firmware,
            "ts": protocol.iso(protocol.utcnow()),
        }

    def _ack_state(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"activity": self.state.activity}
        if self.state.volume is not None:
            out["volume"] = self.reported_volume()
        if self.state.brightness is not None:
            out["brightness"] = self.state.brightness
        out.update(extra or {})
        return out

    # -- commands ------------------------------------------------------------------------

    def on_command(self, raw: bytes | bytearray) -> None:
        try:
            msg = protocol.decode_object(raw)
        except protocol.ProtocolError as exc:
            log.warning("device %s: dropped command: %s", self.spec.address, exc)
            return
        command_id = msg.get("id") if isinstance(msg.get("id"), str) and msg.get("id") else None
        params: dict[str, Any] = msg["params"] if isinstance(msg.get("params"), dict) else {}
        content: dict[str, Any] | None = msg["content"] if isinstance(msg.get("content"), dict) else None
        record = ReceivedCommand(id=command_id, verb=msg.get("verb"), priority=msg.get("priority"),
                                 params=params, content=content, received_at=protocol.utcnow(), raw=bytes(raw))
        self.state.commands.append(record)
        if command_id is None:
            log.warning("device %s: dropped command without an id", self.spec.address)
            return
        if command_id in self._answers:  # QoS 1 is at-least-once: answer again, act once
            record.duplicate = True
            previous = self._answers[command_id]
            record.ok, record.error = previous["ok"], previous["error"]
            self._emit_ack(previous)
            return
        if command_id in self._fetching:  # redelivered while its audio is still coming
            record.duplicate = True
            return
        url = self._audio_to_fetch(msg, content)
        if url is not None:
            self._fetching.add(command_id)
            self.host.fetch_media(url, (content or {}).get("sha256"),
                                  lambda got: self._fetched(msg, params, content, record, got))
            return
        self._answer(msg, params, content, record)

    def _audio_to_fetch(self, msg: dict[str, Any], content: dict[str, Any] | None) -> str | None:
        url = (content or {}).get("media_uri")
        if not (self.spec.fetch_media and msg.get("verb") == "play" and self.spec.kind == "speaker"
                and isinstance(url, str) and url.startswith(("http://", "https://"))):
            return None
        return None if (content or {}).get("kind") == "stream" else url  # a live stream is played, not fetched

    def _fetched(self, msg: dict[str, Any], params: dict[str, Any], content: dict[str, Any] | None,
                 record: ReceivedCommand, got: MediaFetch) -> None:
        self._fetching.discard(record.id or "")
        record.fetch = got
        self.state.fetches.append(got)
        self._answer(msg, params, content, record, got)

    def _answer(self, msg: dict[str, Any], params: dict[str, Any], content: dict[str, Any] | None,
                record: ReceivedCommand, got: MediaFetch | None = None) -> None:
        command_id = record.id or ""
        before = self._snapshot()
        try:
            if got is not None and not got.ok:  # a speaker that has no audio plays nothing: it must say so
                raise _Refused(got.error or "audio fetch failed")
            extra = self._execute(msg, params, content)
            ok, error = True, None
        except _Refused as exc:
            ok, error, extra = False, str(exc), None
        record.ok, record.error, record.queued = ok, error, bool(extra and extra.get("queued"))
        ack = protocol.ack_payload(command_id, ok, error, self._ack_state(extra))
        self._answers[command_id] = ack
        while len(self._answers) > _REMEMBERED_ACKS:
            self._answers.popitem(last=False)
        self._emit_ack(ack)
        if self._snapshot() != before:
            self._report()

    def _report(self) -> None:
        if not self.spec.silent:
            self.host.publish_status(self.state)

    def _emit_ack(self, ack: dict[str, Any]) -> None:
        if self.spec.silent:
            return
        if self.spec.ack_delay_s > 0:
            self.host.call_later(self.spec.ack_delay_s, lambda: self.host.publish_ack(self.state, ack))
        else:
            self.host.publish_ack(self.state, ack)

    def _snapshot(self) -> tuple[Any, ...]:
        s = self.state
        return (s.activity, s.source, s.volume, s.brightness, s.power, s.led_text)

    def _execute(self, msg: dict[str, Any], params: dict[str, Any],
                 content: dict[str, Any] | None) -> dict[str, Any] | None:
        spec, verb = self.spec, msg.get("verb")
        if spec.reject_all:
            raise _Refused("device fault")
        expires_at = None
        if msg.get("expires_at") is not None:
            try:
                expires_at = protocol.parse_iso(msg["expires_at"], "expires_at")
            except protocol.ProtocolError as exc:
                raise _Refused(str(exc)) from None
            if expires_at <= protocol.utcnow():
                raise _Refused("expired")
        if verb not in SPEAKER_VERBS | LED_VERBS | OTHER_KNOWN_VERBS:
            raise _Refused(f"unknown verb {verb!r}")
        if verb not in KIND_VERBS[spec.kind]:
            raise _Refused("unsupported verb")
        if spec.ack_without_acting:
            return None
        if not self.state.power and verb != "power":
            raise _Refused("power is off")
        handler = getattr(self, f"_do_{verb}")
        return handler(msg, params, content, expires_at)

    # -- audio ---------------------------------------------------------------------------

    def _do_play(self, msg: dict[str, Any], params: dict[str, Any], content: dict[str, Any] | None,
                 expires_at: datetime | None) -> dict[str, Any] | None:
        content = content or {}
        duration = content.get("duration_s")
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration <= 0:
            duration = DEFAULT_PLAY_S
        repeat = params.get("repeat", 1)
        if isinstance(repeat, int) and not isinstance(repeat, bool) and repeat > 1:
            duration *= repeat
        source = content.get("id") or content.get("media_uri")
        return self._arbitrate(Playback(msg["id"], "play", self._priority(msg), source, float(duration), expires_at))

    def _do_relay_start(self, msg: dict[str, Any], params: dict[str, Any], content: dict[str, Any] | None,
                        expires_at: datetime | None) -> dict[str, Any] | None:
        url = params.get("url") or (content or {}).get("media_uri")
        if not isinstance(url, str) or not url:
            raise _Refused("bad params: relay_start needs params.url or stream content")
        return self._arbitrate(Playback(msg["id"], "relay", self._priority(msg), url, None, expires_at))

    def _do_relay_stop(self, *_: Any) -> dict[str, Any] | None:
        if self.state.current is not None and self.state.current.kind == "relay":
            self._finish()
        return stream.last_report(self.state.streams)  # the ack tells the hub what the stream brought

    def _do_stop(self, *_: Any) -> None:
        self._clear_playback()

    def _do_set_volume(self, msg: dict[str, Any], params: dict[str, Any], *_: Any) -> None:
        self.state.volume = _level(params)

    @staticmethod
    def _priority(msg: dict[str, Any]) -> str:
        p = msg.get("priority")
        return p if p in protocol.PRIORITY_RANK else "normal"

    # -- LED -------------------------------------------------------------------------------

    def _do_led_show(self, msg: dict[str, Any], params: dict[str, Any], content: dict[str, Any] | None,
                     expires_at: datetime | None) -> None:
        text = params.get("text") or (content or {}).get("body")
        if not isinstance(text, str) or not text:
            raise _Refused("bad params: led_show needs params.text or led_text content")
        text = protocol.nfc(text)
        if self.spec.text_max_bytes is not None:  # cut silently, on a character boundary
            text = text.encode("utf-8")[:self.spec.text_max_bytes].decode("utf-8", errors="ignore")
        s = self.state
        s.led_text = strip_diacritics(text) if self.spec.mangle_text else text
        s.activity = "showing"
        s.source = (content or {}).get("id")
        self._cancel(self._led_timer)
        duration = params.get("duration_s")
        if isinstance(duration, (int, float)) and not isinstance(duration, bool) and duration > 0:
            shown = s.led_text
            self._led_timer = self.host.call_later(float(duration), lambda: self._led_expired(shown))

    def _led_expired(self, shown: str | None) -> None:
        if self.state.led_text == shown and self.state.activity == "showing":
            self._do_led_clear()
            self._report()

    def _do_led_clear(self, *_: Any) -> None:
        self._cancel(self._led_timer)
        s = self.state
        s.led_text = None
        if s.activity == "showing":
            s.activity, s.source = "idle", None

    def _do_set_brightness(self, msg: dict[str, Any], params: dict[str, Any], *_: Any) -> None:
        self.state.brightness = _level(params)

    # -- power -----------------------------------------------------------------------------

    def _do_power(self, msg: dict[str, Any], params: dict[str, Any], *_: Any) -> None:
        on = params.get("on")
        if not isinstance(on, bool):
            raise _Refused("bad params: on must be true or false")
        s = self.state
        if on == s.power:
            return
        s.power = on
        if not on:
            self._clear_playback()
            s.activity, s.source = "off", None
        else:
            s.activity = "showing" if s.led_text else "idle"

    @staticmethod
    def _cancel(timer: Timer | None) -> None:
        if timer is not None:
            timer.cancel()


def set_faults(spec: SimDevice, **switches: Any) -> None:
    """Change fault switches of a device, refusing names that are not switches."""
    unknown = sorted(set(switches) - set(FAULT_SWITCHES))
    if unknown:
        raise ValueError(f"not fault switches: {', '.join(unknown)} (known: {', '.join(FAULT_SWITCHES)})")
    for name, value in switches.items():
        setattr(spec, name, value)


__all__ = ["Behaviour", "DeviceState", "FAULT_SWITCHES", "Playback", "ReceivedCommand", "SimDevice",
           "set_faults", "strip_diacritics"]
