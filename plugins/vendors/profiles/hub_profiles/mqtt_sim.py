"""A generic MQTT device driven by a profile, for tests and demos.

It learns everything from the profile: it subscribes to the command topics, recovers the
values a command carries by reading the topic and payload back through their templates, and
answers by the profile's ack rule. An echo ack is also its model of state: after `match:
{POWER: "{state}"}` the device's POWER is what {state} was, which the status report then shows.

Fault modes (hub.simulation): silent (acts, never confirms nor reports), rejects_all (a reply
says not ok; an echo reports the unchanged state), acks_without_acting (confirms, changes
nothing), no_heartbeat (reports on change only), misreports_volume (reports a volume a fifth of
the scale away from the real one).
"""
from __future__ import annotations

import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from hub_profiles.model import MqttCommand, MqttStatus, Payload, Profile
from hub_profiles.template import RenderError, Template, coerce_scalar, to_text
from hub_profiles.values import MISSING, Source, encode_json, set_path

log = logging.getLogger(__name__)

# Not imitated: ignores_emergency and mangles_diacritics (the simulator models no play queue and no
# board text), accepts_unauthenticated (MQTT credentials are the broker's to check, not the device's).
FAULTS = ("silent", "rejects_all", "acks_without_acting", "no_heartbeat", "misreports_volume")
# What a witness reports (hub_conformance.witness); led_text and source are never modelled.
OBSERVED = ("activity", "power", "volume", "brightness")


@dataclass
class Received:
    topic: str
    payload: bytes
    verb: str | None
    values: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class _Matcher:
    """Reads one command back from the wire by inverting its topic and payload templates."""

    def __init__(self, command: MqttCommand, fixed: dict[str, str]) -> None:
        self.command = command
        self.topic_rx, self.topic_names = command.topic.pattern(fixed, level=True)
        marker = "\x00"
        rendered = "".join(p if isinstance(p, str) else fixed.get(p.name, marker) for p in command.topic.parts)
        # A level holding any unknown placeholder becomes a single-level wildcard.
        self.subscription = "/".join("+" if marker in level else level for level in rendered.split("/"))

    def read(self, topic: str, payload: bytes) -> dict[str, Any] | None:
        m = self.topic_rx.match(topic)
        if not m:
            return None
        values = {name: coerce_scalar(m.group(f"g{i}")) for i, name in enumerate(self.topic_names)}
        got = _invert(self.command.payload, payload)
        if got is None:
            return None
        values.update(got)
        return values


def _invert(payload: Payload, raw: bytes) -> dict[str, Any] | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if payload.kind == "text":
        return _invert_text(payload.body, text)
    try:
        data = json.loads(text)
    except ValueError:
        return None
    out: dict[str, Any] = {}
    return out if _invert_json(payload.body, data, out) else None


def _invert_text(template: Template, text: str) -> dict[str, Any] | None:
    rx, names = template.pattern()
    m = rx.match(text)
    if not m:
        return None
    return {name: coerce_scalar(m.group(f"g{i}")) for i, name in enumerate(names)}


def _invert_json(template: Any, data: Any, out: dict[str, Any]) -> bool:
    if isinstance(template, Template):
        if template.whole is not None:
            out[template.whole] = data
            return True
        got = _invert_text(template, to_text(data)) if isinstance(data, str) else None
        if got is None:
            return False
        out.update(got)
        return True
    if isinstance(template, dict):
        return isinstance(data, dict) and all(k in data and _invert_json(v, data[k], out) for k, v in template.items())
    if isinstance(template, list):
        return (isinstance(data, list) and len(data) == len(template)
                and all(_invert_json(t, d, out) for t, d in zip(template, data, strict=True)))
    return template == data


class SimMqttDevice:
    """One simulated device with its own MQTT connection (so its own last will)."""

    def __init__(self, fleet: ProfileMqttFleet, address: str, faults: Iterable[str] = ()) -> None:
        self.fleet = fleet
        self.address = address
        self.faults = set(faults)
        self.lock = threading.Lock()
        self.state: dict[str, Any] = json.loads(json.dumps(fleet.profile.simulator.get("state", {})))
        self.received: list[Received] = []
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        fixed = {"prefix": fleet.prefix or "", "address": address}
        self._fixed = fixed
        self._matchers = [_Matcher(c, fixed) for c in fleet.profile.commands.values() if isinstance(c, MqttCommand)]
        self.link_cut = False
        self.client = self._new_client()

    # -- wiring --------------------------------------------------------------------------------
    def _new_client(self) -> mqtt.Client:
        fleet = self.fleet
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"sim-{fleet.profile.name}-{self.address}-{secrets.token_hex(3)}",
                             protocol=mqtt.MQTTv311, clean_session=True)
        if fleet.username:
            client.username_pw_set(fleet.username, fleet.password)
        presence = self._presence()
        if presence is not None:
            topic, _online, offline = presence
            client.will_set(topic, to_text(offline), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = lambda *a: self.connected.clear()
        return client

    def cut_link(self) -> None:
        """Lose the connection without DISCONNECT, as a power cut or a dead 4G link does, so the
        broker publishes the last will. The device keeps its state."""
        self.link_cut = True
        client = self.client
        client.loop_stop()
        sock = client.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.connected.clear()
        self.subscribed.clear()

    def restore_link(self, timeout: float = 10.0) -> None:
        """Reconnect with a fresh session, as the device does after a link loss; waits until the
        broker granted its subscriptions."""
        self.client = self._new_client()
        self.link_cut = False
        self.start()
        if not (self.connected.wait(timeout) and self.subscribed.wait(timeout)):
            raise TimeoutError(f"simulated device {self.address} did not reconnect within {timeout:g}s")

    def _render(self, template: Template) -> str:
        return template.render_text(lambda name: self._fixed[name])

    def _presence(self) -> tuple[str, Any, Any] | None:
        status = self.fleet.profile.status
        if isinstance(status, MqttStatus) and status.presence is not None:
            p = status.presence
            return self._render(p.topic), p.online, p.offline
        return None

    def start(self) -> None:
        self.client.connect(self.fleet.host, self.fleet.port, keepalive=30)
        self.client.loop_start()

    def stop(self, clear_retained: bool = False) -> None:
        if self.link_cut:  # reconnect, or its last will would stay retained on the broker
            try:
                self.restore_link(timeout=5.0)
            except TimeoutError:
                log.warning("sim %s: could not reconnect to clear its presence", self.address)
        presence = self._presence()
        if presence is not None and self.client.is_connected():
            topic, _online, offline = presence
            info = self.client.publish(topic, b"" if clear_retained else to_text(offline).encode(), qos=1, retain=True)
            try:
                info.wait_for_publish(5)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("sim %s: connection refused: %s", self.address, reason_code)
            return
        subs = list(dict.fromkeys(m.subscription for m in self._matchers))
        if subs:
            client.subscribe([(s, 1) for s in subs])
        else:
            self.subscribed.set()
        presence = self._presence()
        if presence is not None:
            topic, online, _offline = presence
            client.publish(topic, to_text(online), qos=1, retain=True)
        self.connected.set()
        self.publish_status()

    def _on_subscribe(self, *args: Any) -> None:
        self.subscribed.set()

    # -- behaviour -----------------------------------------------------------------------------
    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.handle(msg.topic, bytes(msg.payload))
        except Exception:  # noqa: BLE001 - the simulator must keep running whatever arrives
            log.exception("sim %s: failed on %s", self.address, msg.topic)

    def handle(self, topic: str, payload: bytes) -> None:
        for matcher in self._matchers:
            values = matcher.read(topic, payload)
            if values is not None:
                break
        else:
            with self.lock:
                self.received.append(Received(topic, payload, None, {}))
            return
        command = matcher.command
        with self.lock:
            self.received.append(Received(topic, payload, command.verb, values))
        ack = command.ack
        if ack.mode == "echo":
            self._echo(command, values)
        elif ack.mode == "reply" and "silent" not in self.faults:
            self._reply(command, values)
        self.publish_status()

    @property
    def silent(self) -> bool:
        return "silent" in self.faults

    def _lookup(self, values: dict[str, Any]) -> Any:
        def lookup(name: str) -> Any:
            if name in values:
                return values[name]
            if name in self._fixed:
                return self._fixed[name]
            raise KeyError(name)
        return lookup

    def _echo(self, command: MqttCommand, values: dict[str, Any]) -> None:
        ack = command.ack
        lookup = self._lookup(values)
        message: dict[str, Any] = {}
        text: Any = MISSING
        acting = not self.faults & {"rejects_all", "acks_without_acting"}
        with self.lock:
            for path, want in ack.match:
                value = want.render(lookup) if isinstance(want, Template) else want
                if acting:
                    self._set(path, value)
                if "rejects_all" in self.faults:  # it reports what it really holds: unchanged
                    value = self._get(path)
                    if value is MISSING:
                        continue
                value = self._report(path, value)
                if path == "$":
                    text = value
                else:
                    set_path(message, path, value)
        if self.silent or ack.topic is None:
            return
        body = to_text(text).encode() if text is not MISSING else encode_json(message)
        self.client.publish(self._render(ack.topic), body, qos=1)

    def _reply(self, command: MqttCommand, values: dict[str, Any]) -> None:
        ack = command.ack
        if ack.topic is None or "command_id" not in values:
            return
        message: dict[str, Any] = {}
        set_path(message, ack.id_path or "id", values["command_id"])
        refused = False if True not in ack.ok_values else "refused"
        set_path(message, ack.ok_path or "ok", refused if "rejects_all" in self.faults else ack.ok_values[0])
        if "rejects_all" in self.faults and ack.error_path:
            set_path(message, ack.error_path, "device fault")
        self.client.publish(self._render(ack.topic), encode_json(message), qos=1)

    def publish_status(self) -> None:
        status = self.fleet.profile.status
        if self.silent or self.link_cut or not isinstance(status, MqttStatus) or status.topic is None:
            return
        with self.lock:
            uses_whole = any(f.source.path == "$" for f in status.fields.values())
            state = json.loads(json.dumps(self.state))
        volume = self.fleet.volume_path
        if volume is not None and volume != "$" and self._get(volume, state) is not MISSING:
            set_path(state, volume, self._report(volume, self._get(volume, state)))
        body = (to_text(self._report("$", state.get("$", ""))).encode() if uses_whole
                else encode_json({k: v for k, v in state.items() if k != "$"}))
        self.client.publish(self._render(status.topic), body, qos=1)

    def observe(self) -> dict[str, Any]:
        """What the device really holds, in the hub's terms: its true state (never what it may
        misreport) read through the profile's own status fields, which define what POWER or
        Volume mean on the hub's 0–100 scale. Keys it cannot tell are None."""
        status = self.fleet.profile.status
        with self.lock:
            state = json.loads(json.dumps(self.state))
        out: dict[str, Any] = dict.fromkeys(OBSERVED)
        if not isinstance(status, MqttStatus):
            return out

        def get(source: Source) -> Any:
            return self._get(source.path or "$", state)

        for key in OBSERVED:
            spec = status.fields.get(key)
            if spec is None or spec.source.path is None:
                continue
            try:
                value = spec.read(get)
            except RenderError:
                continue
            out[key] = None if value is MISSING else value
        return out

    def commands(self, verb: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if verb is None or r.verb == verb]

    def value(self, path: str) -> Any:
        """What the device really holds at `path` (not what it may misreport)."""
        with self.lock:
            return self._get(path)

    def _get(self, path: str, state: dict[str, Any] | None = None) -> Any:
        node: Any = self.state if state is None else state
        if path == "$":
            return node.get("$", MISSING)
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return MISSING
            node = node[part]
        return node

    def _set(self, path: str, value: Any) -> None:
        if path == "$":
            self.state["$"] = value
        else:
            set_path(self.state, path, value)

    def _report(self, path: str, value: Any) -> Any:
        """What the device says it holds at `path`: the truth, unless it misreports volume."""
        if "misreports_volume" not in self.faults or path != self.fleet.volume_path:
            return value
        number = coerce_scalar(value) if isinstance(value, str) else value
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            return value
        lo, hi = self.fleet.volume_range
        step = max(1, int((hi - lo) // 5))
        return number + step if number + step <= hi else number - step


def _volume_field(profile: Profile) -> tuple[str | None, tuple[float, float]]:
    """Where the device reports volume, and on what scale: what misreports_volume corrupts."""
    specs = []
    if isinstance(profile.status, MqttStatus):
        specs.append(profile.status.fields.get("volume"))
    specs += [c.ack.fields.get("volume") for c in profile.commands.values() if isinstance(c, MqttCommand)]
    for spec in specs:
        if spec is not None and spec.source.path is not None:
            scale = spec.transform.scale
            return spec.source.path, tuple(sorted(scale.src)) if scale else (0, 100)  # type: ignore[return-value]
    return None, (0, 100)


class ProfileMqttFleet:
    """Simulated devices of one MQTT profile. `start()` returns once all are connected and
    subscribed; `stop()` disconnects them (optionally clearing their retained presence)."""

    def __init__(self, profile: Profile, host: str, port: int, prefix: str | None, addresses: Iterable[str], *,
                 status_interval: float | None = None, faults: dict[str, set[str]] | None = None,
                 username: str | None = None, password: str | None = None) -> None:
        if profile.driver != "mqtt":
            raise ValueError(f"profile {profile.name} drives {profile.driver}, not mqtt")
        self.profile = profile
        self.host, self.port = host, port
        self.prefix = prefix or profile.settings.prefix  # type: ignore[union-attr]
        self.username, self.password = username, password
        self.status_interval = status_interval or profile.simulator.get("status_interval_s", 30.0)
        self.volume_path, self.volume_range = _volume_field(profile)
        faults = faults or {}
        self.devices = {a: SimMqttDevice(self, a, faults.get(a, ())) for a in addresses}
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def device(self, address: str) -> SimMqttDevice:
        return self.devices[address]

    def start(self, timeout: float = 15.0) -> None:
        for d in self.devices.values():
            d.start()
        deadline = time.monotonic() + timeout
        for d in self.devices.values():
            if not (d.connected.wait(max(0.0, deadline - time.monotonic()))
                    and d.subscribed.wait(max(0.0, deadline - time.monotonic()))):
                self.stop()
                raise TimeoutError(f"simulated device {d.address} did not connect to {self.host}:{self.port} "
                                   f"within {timeout:g}s")
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick, daemon=True, name=f"sim-{self.profile.name}-status")
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.status_interval):
            for d in self.devices.values():
                if "no_heartbeat" not in d.faults:
                    d.publish_status()

    def observe(self, address: str) -> dict[str, Any]:
        return self.devices[address].observe()

    def cut_link(self, address: str) -> None:
        self.devices[address].cut_link()

    def restore_link(self, address: str) -> None:
        self.devices[address].restore_link()

    def stop(self, clear_retained: bool = False) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None
        for d in self.devices.values():
            d.stop(clear_retained)

    def __enter__(self) -> ProfileMqttFleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(clear_retained=True)
