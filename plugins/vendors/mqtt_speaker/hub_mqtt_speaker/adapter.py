"""The hub side: one MQTT connection that publishes commands and hands back acks, status, presence."""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from hub.addresses import TopicSegmentAddress
from hub.mqtt import ListenerAcks, ListenerId, Subscriptions, end_session, listener_client, make_client
from hub.vendor import (Ack, DeviceRef, Health, Manifest, Outcome, Outgoing, Result, ResultSink,
                        TransientError, VendorAdapter, confirms_commit)

from hub_mqtt_speaker import __version__, parsing, protocol

log = logging.getLogger(__name__)

VENDOR = "mqtt_speaker"


class MqttSpeakerConfigSchema(Schema):
    class Meta:
        unknown = RAISE  # a misspelt key should fail loudly, not silently use a default

    host = fields.Str(load_default="127.0.0.1", metadata={"description": "MQTT broker host"})
    port = fields.Int(load_default=1883, validate=validate.Range(min=1, max=65535))
    topic_prefix = fields.Str(load_default="hub/mqtt_speaker",
                              metadata={"description": "Topics are <prefix>/<address>/{cmd,ack,status,online}; "
                                                       "a device's config may override it"})
    username = fields.Str(load_default=None, allow_none=True)
    password = fields.Str(load_default=None, allow_none=True, load_only=True)
    tls = fields.Bool(load_default=False)
    ca_file = fields.Str(load_default=None, allow_none=True,
                         metadata={"description": "CA bundle for TLS; the system store when absent"})
    client_id = fields.Str(load_default=lambda: f"hub-{secrets.token_hex(6)}",
                           validate=validate.Length(min=1, max=128))
    shared_group = fields.Str(load_default=None, allow_none=True,
                              validate=validate.Regexp(r"^[^/+#$]+$", error="must not contain / + # $"),
                              metadata={"description": "Share ack and status subscriptions among hub "
                                                       "processes with this group name ($share/<group>/...)"})
    listener_client_id = fields.Str(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=128),
        metadata={"description": "Client id of the listening connection (persistent session). Default: "
                                 "<topic_prefix>-listener-<hostname>-<n>, n the lowest not in use on this "
                                 "host. Set it when the hostname is not stable (containers); each "
                                 "listening process needs its own"})
    publish_timeout_s = fields.Float(load_default=5.0, validate=validate.Range(min=0.05, max=600))
    connect_timeout_s = fields.Float(load_default=5.0, validate=validate.Range(min=0.1, max=120))
    keepalive_s = fields.Int(load_default=30, validate=validate.Range(min=5, max=3600))
    max_inflight = fields.Int(load_default=2000, validate=validate.Range(min=1, max=65000),
                              metadata={"description": "Unacknowledged QoS 1 publishes on the wire at once; "
                                                       "paho's default of 20 throttles large batches"})

    @validates("topic_prefix")
    def _prefix_ok(self, value: str, **_: Any) -> None:
        problem = protocol.prefix_problem(value)
        if problem:
            raise ValidationError(problem)


class MqttSpeakerAdapter(VendorAdapter):
    manifest = Manifest(
        name=VENDOR,
        title="IP loudspeakers and LED boards over MQTT",
        version=__version__,
        protocols=("mqtt-3.1.1",),
        device_kinds=("speaker", "led_board"),
        capabilities=frozenset({
            "audio.play_url", "audio.stop", "audio.volume", "audio.stream_relay",
            "led.text", "led.text_unicode", "led.brightness", "power.switch",
            "status.heartbeat", "status.signal", "status.faults",
            "security.auth", "security.tls",
        }),
        config_schema=MqttSpeakerConfigSchema,
        # the device's topic level (and its broker user): no '/', '+', '#', NUL; send() checks again
        address=TopicSegmentAddress(),
    )

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        try:
            self.settings: dict[str, Any] = MqttSpeakerConfigSchema().load(self.config)
        except ValidationError as err:
            raise ValueError(f"{VENDOR} config: {err.messages}") from None
        # Two connections: `_client` sends (clean session, unique id: several worker processes
        # send at once) and `_listener`, made by listen(), hears devices under a persistent
        # session with a stable id, so the broker queues acks for it while it reconnects.
        self._client: mqtt.Client | None = None
        self._listener: mqtt.Client | None = None
        self._listener_id: ListenerId | None = None
        self._sink: ResultSink | None = None
        self._acks = ListenerAcks(False)  # see listen()
        self._connack = threading.Event()
        self._last_error: str | None = None
        self._listen_error: str | None = None
        self._subs = Subscriptions(VENDOR, self._filters)  # the listener's
        self._listening = threading.Event()  # the listener holds a connection (CONNACK'd)
        self._gone = threading.Event()
        self._listener_gone = threading.Event()

    @property
    def _broker(self) -> str:
        return f"{self.settings['host']}:{self.settings['port']}"

    @property
    def listener_client_id(self) -> str | None:
        """The listening connection's client id (None before listen())."""
        return self._listener_id.client_id if self._listener_id is not None else None

    # -- connection ----------------------------------------------------------------------

    def open(self) -> None:
        if self._client is not None:
            return  # already open; paho keeps the connection alive from here on
        s = self.settings
        self._last_error = None
        client = make_client(s, logging.getLogger(f"{__name__}.paho"))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._connack.clear()
        try:
            # Synchronous TCP connect so a dead broker is reported with the OS's own reason.
            client.connect(s["host"], s["port"], keepalive=s["keepalive_s"])
        except (OSError, ValueError) as exc:
            raise TransientError(f"MQTT broker {self._broker} unreachable: {exc}") from exc
        client.loop_start()
        self._client = client
        if not self._connack.wait(s["connect_timeout_s"]) or not client.is_connected():
            reason = self._last_error or f"no CONNACK within {s['connect_timeout_s']:g}s"
            self.close()
            raise TransientError(f"MQTT broker {self._broker} unreachable: {reason}")

    def close(self) -> None:
        self._close_listener()
        client, self._client = self._client, None
        if client is None:
            return
        self._disconnect(client, self._gone)

    @staticmethod
    def _disconnect(client: mqtt.Client, gone: threading.Event) -> None:
        try:
            if client.is_connected():
                gone.clear()
                client.disconnect()
                # Let the network thread put DISCONNECT on the wire before stopping it; otherwise
                # the socket may just be dropped and the broker logs an abnormal close.
                gone.wait(2.0)
            else:
                client.disconnect()  # stops paho's reconnect attempts
        finally:
            client.loop_stop()

    def health(self) -> Health:
        client = self._client
        if client is None or not client.is_connected():
            why = self._last_error or ("not opened" if client is None else "reconnecting")
            return Health(False, f"not connected to {self._broker}: {why}")
        listener = self._listener
        if listener is not None and not listener.is_connected():
            why = self._listen_error or "reconnecting"
            return Health(False, f"listener {self.listener_client_id} not connected to {self._broker}: {why}")
        if listener is not None and self._subs.problem:
            return Health(False, f"listener {self.listener_client_id} on {self._broker}: {self._subs.problem}")
        return Health(True, f"connected to {self._broker} as {self.settings['client_id']}")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            self._last_error = f"broker refused the connection: {reason_code}"
            log.warning("%s: %s", VENDOR, self._last_error)
        else:
            self._last_error = None
        self._connack.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        self._gone.set()
        if reason_code != 0:
            self._last_error = f"connection lost: {reason_code}"
            log.warning("%s: %s from %s; reconnecting", VENDOR, self._last_error, self._broker)

    # -- sending ---------------------------------------------------------------------------

    def _topic_for(self, device: DeviceRef) -> str:
        prefix = device.config.get("topic_prefix") or self.settings["topic_prefix"]
        problem = protocol.prefix_problem(prefix) or protocol.address_problem(device.address)
        if problem:
            raise ValueError(problem)
        return protocol.topic(prefix, device.address, protocol.CMD)

    def send(self, batch: Sequence[Outgoing]) -> list[Result]:
        client = self._client
        if client is None or not client.is_connected():
            why = self._last_error or ("adapter not opened" if client is None else "not connected")
            raise TransientError(f"MQTT broker {self._broker} unreachable: {why}")
        results: list[Result] = []
        waiting: list[tuple[Outgoing, mqtt.MQTTMessageInfo]] = []
        sent_at = protocol.utcnow()
        # Publish everything first and only then wait: PUBACKs for thousands of devices come
        # back in parallel, so the batch costs one round trip rather than one per device.
        encoded: dict[int, bytes] = {}  # a job's items share one envelope: encode it once, not per device
        for item in batch:
            env = item.envelope
            try:
                topic = self._topic_for(item.device)
                payload = encoded.get(id(env))
                if payload is None:
                    payload = encoded[id(env)] = protocol.encode(protocol.command_payload(
                        env.command_id, env.verb, env.params, env.priority, env.expires_at, env.content, sent_at))
            except ValueError as exc:  # bad address or prefix, naive expires_at: retrying won't help
                results.append(Result(item.device.id, Outcome.FAILED, reason=str(exc)))
                continue
            info = client.publish(topic, payload, qos=protocol.QOS)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                waiting.append((item, info))
            else:
                # paho keeps a QoS 1 message it could not send and retries it after reconnecting,
                # so the device may still get it: devices must treat command ids idempotently.
                results.append(Result(item.device.id, Outcome.FAILED, transient=True,
                                      reason=f"publish failed: {mqtt.error_string(info.rc)}"))
        timeout = self.settings["publish_timeout_s"]
        deadline = time.monotonic() + timeout
        for item, info in waiting:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
                published = info.is_published()
            except (RuntimeError, ValueError):
                published = False
            if published:
                results.append(Result(item.device.id, Outcome.PENDING))
            else:
                results.append(Result(item.device.id, Outcome.FAILED, transient=True,
                                      reason=f"broker did not confirm publish within {timeout:g}s"))
        return results

    # -- listening -----------------------------------------------------------------------

    def _filters(self) -> list[tuple[str, int]]:
        prefix, group = self.settings["topic_prefix"], self.settings["shared_group"]
        # Presence is not shared: brokers do not deliver retained messages to shared
        # subscriptions, and every ingest process should learn who is online when it starts.
        # Presence updates are idempotent, so receiving them in each process is harmless.
        return [
            (protocol.subscription(prefix, protocol.ACK, group), protocol.QOS),
            (protocol.subscription(prefix, protocol.STATUS, group), protocol.QOS),
            (protocol.subscription(prefix, protocol.ONLINE), protocol.QOS),
        ]

    def listen(self, sink: ResultSink) -> None:
        """Start hearing devices on a connection of its own (see __init__). Returns at once;
        paho connects and keeps reconnecting in its thread, wait_subscribed() tells when the
        broker has granted the subscriptions."""
        self._sink = sink
        if self._listener is not None:
            return
        s = self.settings
        lid, client = listener_client(s, f"{s['topic_prefix']}-listener", logging.getLogger(f"{__name__}.paho"))
        client.on_connect = self._on_listener_connect
        client.on_disconnect = self._on_listener_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._subs.on_subscribe
        # A sink that confirms commits (the hub's ingest) gets each message's PUBACK as its
        # `done`: the broker resends what a crashed ingest heard but had not stored.
        self._acks = ListenerAcks(confirms_commit(sink))
        self._acks.attach(client)
        self._listener_id, self._listener = lid, client
        self._listening.clear()
        # Asynchronous: a broker that is down now is retried by paho (1 s doubling to 30 s),
        # as the sending connection is after its first CONNACK.
        client.connect_async(s["host"], s["port"], keepalive=s["keepalive_s"])
        client.loop_start()

    def _on_listener_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                             properties: Any) -> None:
        if reason_code.is_failure:
            self._listen_error = f"broker refused the connection: {reason_code}"
            log.warning("%s: listener %s: %s", VENDOR, self.listener_client_id, self._listen_error)
            return
        self._listen_error = None
        self._acks.connected()
        self._listening.set()
        # With session_present the broker still has the subscriptions (and has just started
        # delivering what it queued for us); a broker that lost the session (no persistence
        # across its restart) has not. Renewing is harmless either way, so always renew.
        self._subs.renew(client)

    def _on_listener_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                                properties: Any) -> None:
        self._acks.disconnected()
        self._listening.clear()
        self._subs.lost()
        self._listener_gone.set()
        if reason_code != 0:
            self._listen_error = f"connection lost: {reason_code}"
            log.warning("%s: listener %s: %s from %s; reconnecting (the broker queues for it meanwhile)",
                        VENDOR, self.listener_client_id, self._listen_error, self._broker)

    def _close_listener(self) -> None:
        client, self._listener = self._listener, None
        lid, self._listener_id = self._listener_id, None
        if client is None:
            return
        try:
            connected = client.is_connected()
            self._disconnect(client, self._listener_gone)
            if connected and lid is not None:
                # a session left behind would queue acks for an id that may never return
                end_session(self.settings, lid.client_id, logging.getLogger(f"{__name__}.paho"))
        finally:
            if lid is not None:
                lid.release()

    def wait_subscribed(self, timeout: float = 5.0) -> bool:
        """Whether the broker granted listen()'s subscriptions within `timeout`. For callers
        (tests, certification) that must not make devices talk before the hub can hear."""
        return self._subs.ready.wait(timeout)

    def wait_ready(self, timeout: float) -> bool:
        return self.wait_subscribed(timeout)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # Runs on paho's network thread: anything escaping here would stop all listening.
        sink = self._sink
        if sink is None:
            return
        done = self._acks.completion(client, msg)
        confirm = {"done": done} if confirms_commit(sink) else {}
        address, kind = msg.topic, "unparsed"
        try:
            _prefix, address, kind = protocol.split_topic(msg.topic)
            if kind == protocol.ACK:
                ack = self.parse_ack(address, bytes(msg.payload))
                deliver = lambda: sink.ack(VENDOR, address, ack, **confirm)  # noqa: E731
            elif kind == protocol.STATUS:
                status = self.parse_status(address, bytes(msg.payload))
                deliver = lambda: sink.status(VENDOR, address, status, **confirm)  # noqa: E731
            elif kind == protocol.ONLINE:
                online = protocol.decode_online(msg.payload)
                if online is None:  # a retained presence being cleared, nothing to report
                    done()
                    return
                deliver = lambda: sink.presence(VENDOR, address, online, **confirm)  # noqa: E731
            else:
                done()
                return
        except ValueError as exc:  # StatusParseError and ProtocolError are both ValueErrors
            self._refuse(sink, msg, address, kind, str(exc), done)
            return
        except Exception as exc:  # noqa: BLE001
            self._refuse(sink, msg, address, kind, f"unexpected {exc!r}", done)
            return
        try:
            deliver()
        except Exception as exc:  # noqa: BLE001 - a faulty sink must not kill the listener
            # not acknowledged: the broker offers it again after the next reconnection
            log.warning("%s: sink failed on message from %s: %r", VENDOR, msg.topic, exc)

    @staticmethod
    def _refuse(sink: ResultSink, msg: mqtt.MQTTMessage, address: str, kind: str, why: str,
                done: Any) -> None:
        log.warning("%s: dropped message on %s: %s", VENDOR, msg.topic, why)
        if confirms_commit(sink):  # kept in the ingest's quarantine, then acknowledged
            try:
                sink.rejected(VENDOR, address, kind, bytes(msg.payload), why, done=done)  # type: ignore[attr-defined]
                return
            except Exception as exc:  # noqa: BLE001
                log.warning("%s: could not quarantine a message on %s: %r", VENDOR, msg.topic, exc)
        done()

    # -- parsing ---------------------------------------------------------------------------

    def parse_status(self, address: str, payload: bytes) -> dict[str, Any]:
        return parsing.parse_status(address, payload)

    def parse_ack(self, address: str, payload: bytes) -> Ack:
        return parsing.parse_ack(address, payload)
