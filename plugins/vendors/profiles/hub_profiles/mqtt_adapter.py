"""The generic MQTT driver: renders a profile's commands, publishes them, and confirms them the
way the profile says (broker PUBACK, a state echo waited for in send(), or a reply heard by
listen()).

Two connections, as hub.mqtt describes: the sending one (clean session, unique id: several
worker processes send at once) also hears echoes, since send() waits for them in the worker;
listen() opens a second one with a persistent session under a stable id for replies, status and
presence, so that what devices publish while it reconnects is queued by the broker, not lost."""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import paho.mqtt.client as mqtt
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from hub.mqtt import ListenerAcks, ListenerId, Subscriptions, end_session, listener_client, make_client
from hub.vendor import (Ack, Health, Outcome, Outgoing, Result, ResultSink, TransientError, VendorAdapter,
                        confirms_commit)

from hub_profiles import mqtt_parse
from hub_profiles.context import RenderContext, expired_reason
from hub_profiles.model import MqttCommand, MqttStatus, Payload, Profile
from hub_profiles.template import RenderError, Template, to_text
from hub_profiles.topics import Route, address_problem, topic_problem
from hub_profiles.validate_mqtt import prefix_problem
from hub_profiles.values import decode_message, encode_json

log = logging.getLogger(__name__)


class _QuietShutdown(logging.Filter):
    """paho 2.2's network thread runs once more after a clean DISCONNECT and logs "Client is not
    connected" at ERROR: noise on every normal close, which would alarm operators."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Client is not connected")


_paho_log = logging.getLogger(f"{__name__}.paho")
_paho_log.addFilter(_QuietShutdown())


class MqttProfileConfigSchema(Schema):
    """The site's side of an MQTT profile (the profile says what the device speaks)."""

    class Meta:
        unknown = RAISE  # a misspelt key must fail loudly, not silently use a default

    host = fields.Str(load_default="127.0.0.1", metadata={"description": "MQTT broker host"})
    port = fields.Int(load_default=1883, validate=validate.Range(min=1, max=65535))
    topic_prefix = fields.Str(load_default=None, allow_none=True,
                              metadata={"description": "{prefix} in the profile's topics; the profile's "
                                                       "mqtt.prefix when absent"})
    username = fields.Str(load_default=None, allow_none=True)
    password = fields.Str(load_default=None, allow_none=True, load_only=True)
    tls = fields.Bool(load_default=False)
    ca_file = fields.Str(load_default=None, allow_none=True)
    client_id = fields.Str(load_default=lambda: f"hub-prof-{secrets.token_hex(6)}",
                           validate=validate.Length(min=1, max=128))
    publish_timeout_s = fields.Float(load_default=5.0, validate=validate.Range(min=0.05, max=600))
    connect_timeout_s = fields.Float(load_default=5.0, validate=validate.Range(min=0.1, max=120))
    echo_timeout_s = fields.Float(
        load_default=None, allow_none=True, validate=validate.Range(min=0.1, max=120),
        metadata={"description": "Seconds to wait for a device to report a command's new state (echo acks); "
                                 "each command's own ack timeout_s in the profile when absent. Longer for devices "
                                 "on slow cellular links, shorter on a LAN"})
    keepalive_s = fields.Int(load_default=30, validate=validate.Range(min=5, max=3600))
    max_inflight = fields.Int(load_default=2000, validate=validate.Range(min=1, max=65000))
    listener_client_id = fields.Str(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=128),
        metadata={"description": "Client id of the listening connection (persistent session); default "
                                 "hub-prof-<profile>[-<prefix>]-listener-<hostname>-<n>, n the lowest not in "
                                 "use on this host. Set it when the hostname is not stable (containers)"})

    @validates("topic_prefix")
    def _prefix_ok(self, value: str | None, **_: Any) -> None:
        if value is not None and (problem := prefix_problem(value)):
            raise ValidationError(problem)


def _disconnect(client: mqtt.Client, gone: threading.Event) -> None:
    try:
        if client.is_connected():
            gone.clear()
            client.disconnect()
            gone.wait(2.0)  # let DISCONNECT reach the wire before the thread stops
        else:
            client.disconnect()  # stops paho's reconnect attempts
    finally:
        client.loop_stop()


@dataclass
class _Echo:
    """A command waiting for the device to report the state it asked for."""

    command_id: str
    route: int
    expected: list[tuple[str, Any]]
    done: bool = False
    message: Any = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Prepared:
    item: Outgoing
    command: MqttCommand
    topic: str
    payload: bytes
    echo: _Echo | None = None
    info: Any = None


class MqttProfileAdapter(VendorAdapter):
    """Subclassed once per profile (hub_profiles.adapters) with `manifest` and `profile` set."""

    profile: ClassVar[Profile]

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        try:
            self.settings: dict[str, Any] = MqttProfileConfigSchema().load(self.config)
        except ValidationError as err:
            raise ValueError(f"{self.manifest.name} config: {err.messages}") from None
        self.prefix: str | None = self.settings["topic_prefix"] or self.profile.settings.prefix
        self.qos = self.profile.settings.qos
        self._client: mqtt.Client | None = None  # sends, hears echoes
        self._listener: mqtt.Client | None = None  # listen(): replies, status, presence
        self._listener_id: ListenerId | None = None
        self._sink: ResultSink | None = None
        self._acks = ListenerAcks(False)  # PUBACK after the ingest's commit (listen())
        self._connack = threading.Event()
        self._gone = threading.Event()
        self._listener_gone = threading.Event()
        self._last_error: str | None = None
        self._listen_error: str | None = None
        self._subs = Subscriptions(self.vendor, self._echo_filters)
        self._listen_subs = Subscriptions(self.vendor, self._listen_filters)
        self._echo_cond = threading.Condition()
        self._echoes: dict[str, list[_Echo]] = {}
        self._echo_routes: list[Route] = []
        self._echo_index: dict[str, int] = {}
        for cmd in self._commands():
            if cmd.ack.mode == "echo" and cmd.ack.topic is not None:
                key = cmd.ack.topic.source
                if key not in self._echo_index:
                    self._echo_index[key] = len(self._echo_routes)
                    self._echo_routes.append(Route.of(cmd.ack.topic, self.prefix))
        status = self.profile.status if isinstance(self.profile.status, MqttStatus) else None
        reply = self.profile.reply_ack
        self._reply_route = Route.of(reply.topic, self.prefix) if reply and reply.topic else None
        self._status_route = Route.of(status.topic, self.prefix) if status and status.topic else None
        self._presence_route = (Route.of(status.presence.topic, self.prefix)
                                if status and status.presence else None)

    def _commands(self) -> list[MqttCommand]:
        return [c for c in self.profile.commands.values() if isinstance(c, MqttCommand)]

    @property
    def vendor(self) -> str:
        return self.manifest.name

    @property
    def _broker(self) -> str:
        return f"{self.settings['host']}:{self.settings['port']}"

    # -- connection ----------------------------------------------------------------------------
    def open(self) -> None:
        if self._client is not None:
            return
        s = self.settings
        client = make_client(s, _paho_log)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._subs.on_subscribe
        self._connack.clear()
        try:
            client.connect(s["host"], s["port"], keepalive=s["keepalive_s"])
        except (OSError, ValueError) as exc:
            raise TransientError(f"MQTT broker {self._broker} unreachable: {exc}") from exc
        client.loop_start()
        self._client = client
        timeout = s["connect_timeout_s"]
        if not self._connack.wait(timeout) or not client.is_connected():
            reason = self._last_error or f"no CONNACK within {timeout:g}s"
            self.close()
            raise TransientError(f"MQTT broker {self._broker} unreachable: {reason}")
        # An echo that arrives before the broker granted its subscription would be lost and the
        # command reported unconfirmed, so sending waits for the grant.
        if self._echo_routes and not self._subs.ready.wait(timeout):
            self.close()
            why = self._subs.problem or f"did not grant subscriptions within {timeout:g}s"
            raise TransientError(f"MQTT broker {self._broker}: {why}")

    def close(self) -> None:
        self._close_listener()
        client, self._client = self._client, None
        if client is not None:
            _disconnect(client, self._gone)

    def health(self) -> Health:
        client, listener = self._client, self._listener
        if client is None or not client.is_connected():
            why = self._last_error or ("not opened" if client is None else "reconnecting")
            return Health(False, f"not connected to {self._broker}: {why}")
        if listener is not None and not listener.is_connected():
            why = self._listen_error or "reconnecting"
            return Health(False, f"listener {self.listener_client_id} not connected to {self._broker}: {why}")
        if listener is not None and self._listen_subs.problem:
            return Health(False, f"listener {self.listener_client_id} on {self._broker}: {self._listen_subs.problem}")
        return Health(True, f"connected to {self._broker} as {self.settings['client_id']}")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            self._last_error = f"broker refused the connection: {reason_code}"
            log.warning("%s: %s", self.vendor, self._last_error)
        else:
            self._last_error = None
            self._subs.renew(client)
        self._connack.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._subs.lost()
        self._gone.set()
        if reason_code != 0:
            self._last_error = f"connection lost: {reason_code}"
            log.warning("%s: %s from %s; reconnecting", self.vendor, self._last_error, self._broker)

    # -- subscriptions -------------------------------------------------------------------------
    def _echo_filters(self) -> list[tuple[str, int]]:
        """The sending connection's: send() waits for echoes in the process that sends."""
        return [(s, self.qos) for s in dict.fromkeys(r.subscription for r in self._echo_routes)]

    def _listen_filters(self) -> list[tuple[str, int]]:
        """The listener's, at QoS 1 whatever the profile sends with, so that the broker queues
        what devices publish at QoS 1 while the listener is away."""
        routes = (self._reply_route, self._status_route, self._presence_route)
        return [(s, 1) for s in dict.fromkeys(r.subscription for r in routes if r)]

    @property
    def listener_client_id(self) -> str | None:
        """The listening connection's client id (None before listen())."""
        return self._listener_id.client_id if self._listener_id is not None else None

    def listen(self, sink: ResultSink) -> None:
        """Hear replies, status and presence on a connection of its own (see the module's
        docstring). Returns at once: paho connects and keeps reconnecting in its thread."""
        self._sink = sink
        if self._listener is not None:
            return
        if not self._listen_filters():
            self._listen_subs.ready.set()  # nothing to hear: no connection, no session
            return
        s = self.settings
        lid, client = listener_client(s, "-".join(filter(None, ("hub-prof", self.vendor, self.prefix, "listener"))),
                                      _paho_log)
        client.on_connect = self._on_listener_connect
        client.on_disconnect = self._on_listener_disconnect
        client.on_message = self._on_listener_message
        client.on_subscribe = self._listen_subs.on_subscribe
        self._acks = ListenerAcks(confirms_commit(sink))
        self._acks.attach(client)
        self._listener_id, self._listener = lid, client
        client.connect_async(s["host"], s["port"], keepalive=s["keepalive_s"])
        client.loop_start()

    def _on_listener_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                             properties: Any) -> None:
        if reason_code.is_failure:
            self._listen_error = f"broker refused the connection: {reason_code}"
            log.warning("%s: listener %s: %s", self.vendor, self.listener_client_id, self._listen_error)
            return
        self._listen_error = None
        self._acks.connected()
        # The broker may still hold the session's subscriptions (session_present), or may have
        # lost them; renewing is harmless either way.
        self._listen_subs.renew(client)

    def _on_listener_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                                properties: Any) -> None:
        self._acks.disconnected()
        self._listen_subs.lost()
        self._listener_gone.set()
        if reason_code != 0:
            self._listen_error = f"connection lost: {reason_code}"
            log.warning("%s: listener %s: %s from %s; reconnecting (the broker queues for it meanwhile)",
                        self.vendor, self.listener_client_id, self._listen_error, self._broker)

    def _close_listener(self) -> None:
        """A deliberate stop ends the session: one left behind would queue every report for an
        id that may never connect again. MQTT 3.1.1 has no session expiry; connecting once with
        a clean session under the same id ends it. A process that dies keeps its session for
        its successor on this host (same slot, same id)."""
        client, self._listener = self._listener, None
        lid, self._listener_id = self._listener_id, None
        if client is None:
            return
        try:
            connected = client.is_connected()
            _disconnect(client, self._listener_gone)
            if connected and lid is not None:
                end_session(self.settings, lid.client_id, _paho_log)
        finally:
            if lid is not None:
                lid.release()

    def wait_ready(self, timeout: float) -> bool:
        """After listen(): whether the broker granted the listener's subscriptions."""
        return self._listen_subs.ready.wait(timeout)

    # -- sending -------------------------------------------------------------------------------
    def _context(self, item: Outgoing, command: MqttCommand) -> RenderContext:
        caps = item.device.capabilities or self.profile.capabilities
        return RenderContext(item.envelope, item.device, values=command.values, prefix=self.prefix,
                             unicode_text="led.text_unicode" in caps)

    def _prepare(self, item: Outgoing) -> _Prepared | Result:
        device, env = item.device, item.envelope
        command = self.profile.commands.get(env.verb)
        if not isinstance(command, MqttCommand):
            return Result(device.id, Outcome.FAILED, reason=f"profile {self.vendor} has no command for {env.verb}")
        problem = address_problem(device.address) or expired_reason(env)
        if problem:
            return Result(device.id, Outcome.FAILED, reason=problem)
        ctx = self._context(item, command)
        try:
            topic = command.topic.render_text(ctx)
            payload = render_payload(command.payload, ctx)
            echo = None
            if command.ack.mode == "echo" and command.ack.topic is not None:
                expected = [(path, want.render(ctx) if isinstance(want, Template) else want)
                            for path, want in command.ack.match]
                echo = _Echo(env.command_id, self._echo_index[command.ack.topic.source], expected)
        except RenderError as exc:  # the command lacks what the profile needs: retrying won't help
            return Result(device.id, Outcome.FAILED, reason=f"{env.verb}: {exc}")
        problem = topic_problem(topic)
        if problem:
            return Result(device.id, Outcome.FAILED, reason=problem)
        return _Prepared(item, command, topic, payload, echo)

    def send(self, batch: Sequence[Outgoing]) -> list[Result]:
        client = self._client
        if client is None or not client.is_connected():
            why = self._last_error or ("adapter not opened" if client is None else "not connected")
            raise TransientError(f"MQTT broker {self._broker} unreachable: {why}")
        results: list[Result] = []
        sent: list[_Prepared] = []
        for item in batch:
            p = self._prepare(item)
            if isinstance(p, Result):
                results.append(p)
                continue
            if p.echo is not None:  # registered before publishing: a fast device must not be missed
                self._expect(item.device.address, p.echo)
            p.info = client.publish(p.topic, p.payload, qos=self.qos, retain=p.command.retain)
            if p.info.rc != mqtt.MQTT_ERR_SUCCESS:
                self._forget(item.device.address, p.echo)
                results.append(Result(item.device.id, Outcome.FAILED, transient=True,
                                      reason=f"publish failed: {mqtt.error_string(p.info.rc)}"))
                continue
            sent.append(p)
        confirmed = self._wait_published(sent, results)
        results.extend(self._confirm(confirmed))
        return results

    def _wait_published(self, sent: list[_Prepared], results: list[Result]) -> list[_Prepared]:
        """Publish all, then wait once: PUBACKs of a large batch come back in parallel."""
        timeout = self.settings["publish_timeout_s"]
        deadline = time.monotonic() + timeout
        ok = []
        for p in sent:
            try:
                p.info.wait_for_publish(max(0.0, deadline - time.monotonic()))
                published = p.info.is_published()
            except (RuntimeError, ValueError):
                published = False
            if published:
                ok.append(p)
            else:
                self._forget(p.item.device.address, p.echo)
                results.append(Result(p.item.device.id, Outcome.FAILED, transient=True,
                                      reason=f"broker did not confirm publish within {timeout:g}s"))
        return ok

    def _confirm(self, published: list[_Prepared]) -> list[Result]:
        results = []
        echoes = []
        for p in published:
            mode = p.command.ack.mode
            if mode == "none":
                # The device says nothing; the broker's PUBACK is all anyone will know.
                results.append(Result(p.item.device.id, Outcome.ACKED, detail={"confirmed_by": "broker"}))
            elif mode == "reply":
                results.append(Result(p.item.device.id, Outcome.PENDING))
            else:
                echoes.append(p)
        if echoes:
            results.extend(self._wait_echoes(echoes))
        return results

    # -- echoes --------------------------------------------------------------------------------
    def _expect(self, address: str, echo: _Echo) -> None:
        with self._echo_cond:
            self._echoes.setdefault(address, []).append(echo)

    def _forget(self, address: str, echo: _Echo | None) -> None:
        if echo is None:
            return
        with self._echo_cond:
            waiting = self._echoes.get(address, [])
            if echo in waiting:
                waiting.remove(echo)
            if not waiting:
                self._echoes.pop(address, None)

    def _echo_timeout(self, p: _Prepared) -> float:
        """The site's echo_timeout_s when set (its network, not the device model, sets the pace),
        else the profile's timeout_s for this command."""
        return self.settings.get("echo_timeout_s") or p.command.ack.timeout_s

    def _wait_echoes(self, echoes: list[_Prepared]) -> list[Result]:
        deadline = {id(p): p.echo.at + self._echo_timeout(p) for p in echoes if p.echo}
        with self._echo_cond:
            self._echo_cond.wait_for(lambda: all(p.echo.done or time.monotonic() >= deadline[id(p)]
                                                 for p in echoes if p.echo),
                                     timeout=max(0.0, max(deadline.values()) - time.monotonic()))
        results = []
        for p in echoes:
            echo = p.echo
            assert echo is not None
            self._forget(p.item.device.address, echo)
            device_id = p.item.device.id
            if echo.done:
                detail = mqtt_parse.detail_from(p.command.ack.fields, echo.message) if p.command.ack.fields else None
                results.append(Result(device_id, Outcome.ACKED, detail=detail or None))
            else:
                wanted = ", ".join(f"{path}={to_text(v)}" for path, v in echo.expected)
                # Worth retrying: the device may have been reconnecting; the commands are states,
                # so sending one again is harmless.
                results.append(Result(device_id, Outcome.FAILED, transient=True,
                                      reason=f"device did not report {wanted} within {self._echo_timeout(p):g}s"))
        return results

    def _hear_echo(self, topic: str, payload: bytes) -> None:
        for index, route in enumerate(self._echo_routes):
            address = route.address(topic)
            if address is None:
                continue
            try:
                message = decode_message(payload)
            except ValueError:
                return
            with self._echo_cond:
                for echo in self._echoes.get(address, []):
                    if echo.route == index and not echo.done and mqtt_parse.echo_matches(echo.expected, message):
                        echo.done, echo.message = True, message
                        self._echo_cond.notify_all()
                        break  # one report confirms one command; a repeated command gets its own

    # -- listening -----------------------------------------------------------------------------
    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        """The sending connection's messages: echoes for send()."""
        try:
            self._hear_echo(msg.topic, bytes(msg.payload))
        except Exception as exc:  # noqa: BLE001 - runs on paho's network thread
            log.warning("%s: dropped message on %s: unexpected %r", self.vendor, msg.topic, exc)

    def _on_listener_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # Runs on paho's network thread: anything escaping here would stop all listening.
        sink = self._sink
        if sink is None:
            return
        done = self._acks.completion(client, msg)
        confirm = {"done": done} if confirms_commit(sink) else {}
        try:
            deliver = self._route(msg.topic, bytes(msg.payload), sink, confirm)
        except Exception as exc:  # noqa: BLE001 - StatusParseError is a ValueError; anything else too
            why = str(exc) if isinstance(exc, ValueError) else f"unexpected {exc!r}"
            log.warning("%s: dropped message on %s: %s", self.vendor, msg.topic, why)
            if confirm:  # kept in the ingest's quarantine, acknowledged once stored
                try:
                    sink.rejected(self.vendor, msg.topic, "unparsed", bytes(msg.payload), why,  # type: ignore[attr-defined]
                                  done=done)
                    return
                except Exception:  # noqa: BLE001
                    log.warning("%s: could not quarantine a message on %s", self.vendor, msg.topic, exc_info=True)
            done()
            return
        if deliver is None:
            done()
            return
        try:
            deliver()
        except Exception as exc:  # noqa: BLE001 - not acknowledged: offered again after a reconnection
            log.warning("%s: sink failed on message from %s: %r", self.vendor, msg.topic, exc)

    def _route(self, topic: str, payload: bytes, sink: ResultSink,
               confirm: dict[str, Any] | None = None) -> Callable[[], None] | None:
        vendor, kw = self.vendor, confirm or {}
        if self._reply_route and (address := self._reply_route.address(topic)) is not None:
            ack = self.parse_ack(address, payload)
            return lambda: sink.ack(vendor, address, ack, **kw)
        if self._status_route and (address := self._status_route.address(topic)) is not None:
            status = self.parse_status(address, payload)
            return lambda: sink.status(vendor, address, status, **kw)
        if self._presence_route and (address := self._presence_route.address(topic)) is not None:
            status_spec = self.profile.status
            assert isinstance(status_spec, MqttStatus) and status_spec.presence is not None
            online = mqtt_parse.parse_presence(status_spec.presence, address, payload)
            if online is None:
                return None
            return lambda: sink.presence(vendor, address, online, **kw)
        return None

    def parse_status(self, address: str, payload: bytes) -> dict[str, Any]:
        status = self.profile.status if isinstance(self.profile.status, MqttStatus) else None
        return mqtt_parse.parse_status(status, address, payload)

    def parse_ack(self, address: str, payload: bytes) -> Ack:
        return mqtt_parse.parse_reply(self.profile.reply_ack, address, payload)


def render_payload(payload: Payload, lookup: Callable[[str], Any]) -> bytes:
    """The bytes on the wire: text as UTF-8, or compact UTF-8 JSON."""
    if payload.kind == "text":
        return to_text(payload.body.render(lookup)).encode("utf-8")

    def walk(node: Any) -> Any:
        if isinstance(node, Template):
            return node.render(lookup)
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return encode_json(walk(payload.body))
