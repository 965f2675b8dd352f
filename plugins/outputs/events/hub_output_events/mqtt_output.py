"""The `event_mqtt` output: each hub event published to a broker, QoS 1, not retained, on a
subtopic of its type (`hub/events` + `device.offline` → `hub/events/device/offline`).

One event is in flight at a time and the next is published only after the broker's PUBACK, so
the broker receives them in order. While the broker is away, paho reconnects in the background
and the head of the queue waits (retried with backoff, never given up: a message paho holds is
sent when the connection comes back, so calling it dead would be untrue); only an event that
finds the queue full becomes a dead letter. Delivery is at least once: a PUBACK lost with the
connection makes paho send the message again, so subscribers drop repeated `id`s.
"""
from __future__ import annotations

import logging
import re
import ssl
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates, validates_schema

from hub.addresses import default_policy
from hub.output import OutputError, OutputManifest

from hub_output_events import __version__
from hub_output_events.envelope import Envelope, EventFilter, topic_for
from hub_output_events.lane import DeliveryFailed, Lane, RetryPolicy
from hub_output_events.storage import PendingFile
from hub_output_events.stream import DESTINATION_NAME, CommonSchema, StreamOutput, events_field

log = logging.getLogger(__name__)


class ConfigSchema(CommonSchema):
    class Meta:
        unknown = RAISE

    name = fields.Str(load_default="mqtt", validate=validate.Regexp(
        DESTINATION_NAME, error="use lower-case letters, digits, '_' and '-' (at most 63)"))
    host = fields.Str(required=True)
    port = fields.Int(load_default=1883, validate=validate.Range(min=1, max=65535))
    topic_prefix = fields.Str(load_default="hub/events")
    events = events_field()
    username = fields.Str(load_default=None, allow_none=True)
    password = fields.Str(load_default=None, allow_none=True)
    client_id = fields.Str(load_default=None, allow_none=True)  # default: hub-events-<random>
    tls = fields.Bool(load_default=False)
    ca_file = fields.Str(load_default=None, allow_none=True)
    keepalive_s = fields.Int(load_default=30, validate=validate.Range(min=5, max=3600))
    ack_timeout_s = fields.Float(load_default=10.0, validate=validate.Range(min=0.1, max=300))

    @validates("topic_prefix")
    def _prefix(self, value: str, **_: Any) -> None:
        if not value.strip("/") or any(c in value for c in "+#\0") or value.startswith("$"):
            raise ValidationError("a topic without wildcards (+, #), not starting with $, such as hub/events")

    @validates("host")
    def _host(self, value: str, **_: Any) -> None:
        if not value.strip() or any(c in value for c in "/ ") or re.fullmatch(r"[^:]+:\d+", value):
            raise ValidationError("a host name or IP address, without scheme or port (port has its own key)")

    @validates_schema
    def _whole(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("password") is not None and data.get("username") is None:
            raise ValidationError("a password needs a username", "password")
        if data.get("backoff_max_s", 300) < data.get("backoff_initial_s", 1):
            raise ValidationError("must not be less than backoff_initial_s", "backoff_max_s")
        # The hub's own broker may carry the stream (under a topic prefix of its own); its Redis,
        # database or API may not be talked MQTT to.
        own = default_policy().own_service(data["host"], data.get("port", 1883)) if data.get("host") else None
        if own is not None and not own.startswith("MQTT broker"):
            raise ValidationError(f"{data['host']}:{data.get('port', 1883)} is the hub's own {own}, not a broker",
                                  "port")


def _setting(config: dict[str, Any], key: str) -> Any:
    if key in config:
        return config[key]
    default = ConfigSchema().fields[key].load_default
    return default() if callable(default) else default


class MqttSender:
    """A paho client kept connected in the background; `__call__` publishes one envelope and
    waits for its PUBACK. Called by the lane's thread only."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.prefix = _setting(config, "topic_prefix")
        self.ack_timeout_s = float(_setting(config, "ack_timeout_s"))
        self._cond = threading.Condition()
        self._acked: set[int] = set()
        self._connected = False
        self._last_refusal: str | None = None
        self._waiting: tuple[str, int] | None = None  # (envelope id, mid) paho holds, not yet acked
        client_id = _setting(config, "client_id") or f"hub-events-{uuid.uuid4().hex[:12]}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        if _setting(config, "username") is not None:
            self.client.username_pw_set(config["username"], _setting(config, "password"))
        if _setting(config, "tls"):
            self.client.tls_set_context(ssl.create_default_context(cafile=_setting(config, "ca_file")))
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.connect_async(config["host"], int(_setting(config, "port")), int(_setting(config, "keepalive_s")))
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self._cond:
            self._connected = not reason.is_failure
            self._last_refusal = None if self._connected else str(reason)
            self._cond.notify_all()
        if reason.is_failure:
            log.warning("MQTT broker refused the connection: %s", reason)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self._cond:
            self._connected = False
            self._cond.notify_all()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._cond:
            self._acked.add(mid)
            self._cond.notify_all()

    @property
    def connected(self) -> bool:
        with self._cond:
            return self._connected

    def __call__(self, envelope: Envelope) -> None:
        with self._cond:
            waiting = self._waiting if self._waiting and self._waiting[0] == envelope.id else None
            if waiting is None:
                self._waiting = None
                if not self._connected:
                    why = f" (refused: {self._last_refusal})" if self._last_refusal else ""
                    raise DeliveryFailed(f"not connected to the broker{why}")
        if waiting is None:
            info = self.client.publish(topic_for(self.prefix, envelope.type), envelope.body(), qos=1, retain=False)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                raise DeliveryFailed("paho's outgoing queue is full")
            # NO_CONN here means the connection dropped as we published: paho keeps the message
            # and sends it on reconnecting, so wait for its PUBACK like any other
            waiting = (envelope.id, info.mid)
            with self._cond:
                self._waiting = waiting
        mid = waiting[1]
        with self._cond:
            if not self._cond.wait_for(lambda: mid in self._acked, timeout=self.ack_timeout_s):
                raise DeliveryFailed(f"no PUBACK within {self.ack_timeout_s:g}s"
                                     + ("" if self._connected else " (not connected to the broker)"))
            self._acked.discard(mid)
            self._waiting = None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class MqttEventOutput(StreamOutput):
    manifest = OutputManifest(name="event_mqtt", title="Event stream: MQTT topic", version=__version__,
                              config_schema=ConfigSchema, events=frozenset({"*"}), interval_s=15.0)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.sender: MqttSender | None = None

    def _build_lanes(self) -> list[tuple[Lane, EventFilter]]:
        c = self.config
        if not c.get("host"):
            raise OutputError(f"output {self.manifest.name}: configuration: host: Missing data for required field.")
        policy = RetryPolicy(max_attempts=None, max_age_s=None, backoff_initial_s=_setting(c, "backoff_initial_s"),
                             backoff_max_s=_setting(c, "backoff_max_s"))
        self.sender = MqttSender(c)
        name = _setting(c, "name")
        target = f"mqtt://{c['host']}:{_setting(c, 'port')}/{_setting(c, 'topic_prefix').strip('/')}/…"
        lane = Lane(name, self.sender, policy, self.store, PendingFile(self.state_dir, name), _setting(c, "max_queue"),
                    describe=target)
        return [(lane, EventFilter(_setting(c, "events")))]

    def status(self) -> dict[str, Any]:
        out = super().status()
        out["connected"] = self.sender.connected if self.sender else False
        return out

    def _close_senders(self) -> None:
        if self.sender is not None:
            self.sender.close()
