"""A paho-mqtt client configured the way every MQTT-speaking adapter of the hub needs it.

Shared by the plugins (they depend on hub-core) so that authentication, TLS, the in-flight
window and the reconnect policy are set one way everywhere.

Two kinds of client:

* senders (workers, several processes at once) use a clean session and a unique client id:
  the broker must keep nothing for them, and two processes must never share an id, or the
  broker disconnects one each time the other connects;
* a listener that must not lose what devices publish while it is away (a broker restart, a
  network blip, its process restarted) uses a persistent session (`clean_session=False`)
  under a client id that stays the same across reconnections and restarts, so the broker
  queues QoS 1 messages for it meanwhile. `claim_listener_id` hands out such ids so that
  several listeners on one host (ingest processes sharing a `$share` group, or a second
  adapter in the same process) never collide. The broker's per-client queue bound
  (`max_queued_messages`, 1,000 by default) still applies to that queue: see
  deploy/README.md.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import socket
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

_SESSION_MARK = b"session\n"  # in a listener slot's lock file: the broker holds a session for it

# Listeners on one host beyond this many for one base id are surely a leak, not a deployment.
MAX_LISTENER_SLOTS = 64


def make_client(settings: Mapping[str, Any], logger: logging.Logger, *, client_id: str | None = None,
                clean_session: bool = True, cls: type[mqtt.Client] = mqtt.Client) -> mqtt.Client:
    """An unconnected MQTT 3.1.1 client from adapter settings with the keys client_id, username,
    password, tls, ca_file, max_inflight and connect_timeout_s. By default a clean session under
    `settings["client_id"]`; a listener passes its own stable `client_id` and
    `clean_session=False` (see the module's docstring)."""
    client = cls(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or settings["client_id"],
                 protocol=mqtt.MQTTv311, clean_session=clean_session)
    client.enable_logger(logger)
    if settings["username"] is not None:
        client.username_pw_set(settings["username"], settings["password"])
    if settings["tls"]:
        client.tls_set(ca_certs=settings["ca_file"])
    # paho's default window of 20 unacknowledged messages throttles a batch of thousands
    client.max_inflight_messages_set(settings["max_inflight"])
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.connect_timeout = settings["connect_timeout_s"]
    return client


class ListenerId:
    """A stable listener client id held by this process until `release()`.

    The id is `<base>-<host>-<slot>`, `slot` being the lowest number no other live holder on
    this host has (an exclusive `flock` on a file per slot: the kernel drops it when the
    process dies, so a restarted process gets its old slot — and its old session — back)."""

    def __init__(self, client_id: str, lock_fd: int | None) -> None:
        self.client_id = client_id
        self._fd = lock_fd
        # The slot's file remembers that the broker held a session for this id: a process killed
        # without ending it expects the broker to hand it back (SessionWatch warns if not).
        self.had_session = lock_fd is not None and os.pread(lock_fd, len(_SESSION_MARK), 0) == _SESSION_MARK

    def mark_session(self) -> None:
        if self._fd is not None:
            os.pwrite(self._fd, _SESSION_MARK, 0)

    def release(self) -> None:
        """On purpose (the listener ended its session): the next holder expects none."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor drops the flock

    def __repr__(self) -> str:
        return f"ListenerId({self.client_id!r})"


def _lock_dir() -> Path:
    path = Path(tempfile.gettempdir()) / f"hub-mqtt-listener-ids-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def claim_listener_id(base: str, lock_dir: Path | None = None) -> ListenerId:
    """The lowest free stable client id `<base>-<hostname>-<n>` on this host (see ListenerId).
    Raises RuntimeError when MAX_LISTENER_SLOTS listeners of that base are alive here."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "host"
    stem = f"{base}-{host}"
    directory = lock_dir or _lock_dir()
    # The base may hold '/' (a topic prefix): the lock file is named after its hash.
    key = hashlib.sha256(stem.encode("utf-8")).hexdigest()[:24]
    for slot in range(MAX_LISTENER_SLOTS):
        fd = os.open(directory / f"{key}.{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return ListenerId(f"{stem}-{slot}", fd)
    raise RuntimeError(f"{MAX_LISTENER_SLOTS} MQTT listeners named {stem}-* already run on this host")


LOST_SESSION = ("MQTT broker %s did not keep the persistent session of listener %s while it was away: "
                "whatever devices published for it meanwhile (acks, status, presence) is lost, and deliveries "
                "waiting for those acks will end expired. The broker most likely runs without persistence "
                "(`persistence true`), or cannot write it: Mosquitto started as root runs as user `mosquitto` "
                "and, when `persistence_location` is not writable by that user, logs only 'Permission denied' "
                "at each autosave (see deploy/README.md)")


class SessionWatch:
    """Tells when a broker answers a listener's reconnection without the session it had: the
    broker lost what it queued for the listener, which no other sign reveals to the hub."""

    def __init__(self, client_id: str, broker: str, logger: logging.Logger, had_session: bool = False,
                 on_session: Any = None) -> None:
        self.client_id, self.broker, self.log = client_id, broker, logger
        self.had_session = had_session  # a previous holder of the id left a session behind
        self._on_session = on_session  # called once the broker holds a session for us
        self.connects = 0  # CONNACKs accepted
        self.lost = 0  # reconnections that found the session gone

    def connected(self, session_present: bool) -> None:
        self.connects += 1
        if self.had_session and not session_present:
            self.lost += 1
            self.log.warning(LOST_SESSION, self.broker, self.client_id)
        if self.connects == 1 and self._on_session is not None:
            self._on_session()
        self.had_session = True  # a clean_session=False CONNACK: the broker holds one from now on


class _ListenerClient(mqtt.Client):
    """A client whose on_connect callback, whatever the adapter sets, first tells `watch`
    whether the broker kept the session (the check lives here, once, for every adapter)."""

    watch: SessionWatch

    @property
    def on_connect(self) -> Any:
        return mqtt.Client.on_connect.fget(self)

    @on_connect.setter
    def on_connect(self, func: Any) -> None:
        watch = self.watch

        def checked(client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
            if not reason_code.is_failure:
                watch.connected(bool(flags.session_present))
            if func is not None:
                func(client, userdata, flags, reason_code, properties)

        mqtt.Client.on_connect.fset(self, checked)


def listener_client(settings: Mapping[str, Any], base: str, logger: logging.Logger) -> tuple[ListenerId, mqtt.Client]:
    """A listener's id — `settings["listener_client_id"]` when set, else the lowest free
    `<base>-<host>-<n>` (claim_listener_id) — and its unconnected client on a persistent session.
    The client warns (on `hub.mqtt`'s logger) when a reconnection finds the session gone
    (`client.watch`, a SessionWatch)."""
    fixed = settings.get("listener_client_id")
    lid = ListenerId(fixed, None) if fixed else claim_listener_id(base)
    client = make_client(settings, logger, client_id=lid.client_id, clean_session=False, cls=_ListenerClient)
    client.watch = SessionWatch(lid.client_id, f"{settings.get('host')}:{settings.get('port')}", log,
                                had_session=lid.had_session, on_session=lid.mark_session)
    client.on_connect = None  # the watch runs even for an adapter that sets no callback
    return lid, client


def end_session(settings: Mapping[str, Any], client_id: str, logger: logging.Logger) -> None:
    """End the persistent session `client_id` holds on the broker, when a listener stops on
    purpose: one left behind would queue every report (under a $share group, its share of them)
    for an id that may never connect again. MQTT 3.1.1 has no session expiry; connecting once
    with a clean session under the same id is how a session is ended. `settings` as for
    make_client, plus host, port and keepalive_s."""
    done, gone = threading.Event(), threading.Event()
    cleaner = make_client(settings, logger, client_id=client_id, clean_session=True)
    cleaner.on_connect = lambda *_a: done.set()
    cleaner.on_disconnect = lambda *_a: gone.set()
    try:
        cleaner.connect(settings["host"], settings["port"], keepalive=settings["keepalive_s"])
    except (OSError, ValueError) as exc:
        logger.info("could not end MQTT session %s: %s", client_id, exc)
        return
    cleaner.loop_start()
    try:
        if done.wait(min(2.0, settings["connect_timeout_s"])):
            cleaner.disconnect()
            gone.wait(2.0)  # let DISCONNECT reach the wire before the network thread stops
        else:
            logger.info("could not end MQTT session %s: no CONNACK", client_id)
    finally:
        cleaner.loop_stop()


def _nothing() -> None:
    return None


class ListenerAcks:
    """When a listener acknowledges (PUBACK) what it hears: on receipt, as paho does by default,
    or only once the hub has committed it.

    With a sink that confirms commits (hub.vendor.confirms_commit: the hub's ingest) the client
    is put in paho's manual-acknowledgement mode and `completion(msg)` is handed to the sink as
    `done`: the broker keeps each message in flight on the persistent session until then, and
    sends it again to the next connection under the same id — a killed ingest loses nothing it
    had heard. An acknowledgement due to a connection that has since dropped is not sent: the
    broker redelivers the message on the new one (with, possibly, the same packet id for another
    message, which an old acknowledgement would wrongly settle). The broker's
    `max_inflight_messages` bounds how many messages wait unacknowledged (deploy/README.md)."""

    def __init__(self, manual: bool) -> None:
        self.manual = manual
        self._connection = 0

    def attach(self, client: mqtt.Client) -> None:
        """Before connecting."""
        client.manual_ack_set(self.manual)

    def connected(self) -> None:
        """From on_connect and on_disconnect: messages of an earlier connection are the broker's
        to resend."""
        self._connection += 1

    disconnected = connected

    def completion(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> Callable[[], None]:
        if not self.manual or msg.qos == 0:
            return _nothing
        connection, mid, qos = self._connection, msg.mid, msg.qos

        def done() -> None:
            if connection == self._connection:
                client.ack(mid, qos)
        return done


# How every MQTT plugin reports a SUBACK refusal (vendor, filters).
REFUSED = "%s: broker refused subscriptions to %s (its ACL does not let this login read them?)"


class Subscriptions:
    """One connection's subscriptions and what the broker answered (SUBACK), for every adapter.

    Renewed on every connect (a clean session forgets them; a broker that lost a persistent one
    across its restart has too); `ready` is set once the broker granted every filter. A broker
    that refuses some (its ACL, a malformed filter) is reported one way whatever the plugin: a
    warning on this module's logger naming the filters, and `refused`/`problem` for health()."""

    def __init__(self, vendor: str, filters: Callable[[], list[tuple[str, int]]]) -> None:
        self.vendor, self.filters = vendor, filters
        self.ready = threading.Event()
        self.refused: list[str] = []  # filters the last SUBACK refused
        self._lock = threading.Lock()
        self._mid: int | None = None

    def renew(self, client: mqtt.Client) -> None:
        """Subscribe (again) to `filters()`: from on_connect."""
        filters = self.filters()
        if not filters:
            self.ready.set()
            return
        with self._lock:  # so that a fast SUBACK never arrives before its mid is known
            self.ready.clear()
            rc, mid = client.subscribe(filters)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                log.warning("%s: subscribe failed: %s", self.vendor, mqtt.error_string(rc))
            else:
                self._mid = mid

    def lost(self) -> None:
        """The connection dropped: nothing is granted until the next SUBACK."""
        self.ready.clear()

    def on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: list[Any],
                     properties: Any) -> None:
        """paho's on_subscribe callback (CallbackAPIVersion.VERSION2)."""
        with self._lock:
            if mid != self._mid:
                return
        refused = [f for (f, _q), rc in zip(self.filters(), reason_codes, strict=False) if rc.is_failure]
        self.refused = refused
        if refused:
            log.warning(REFUSED, self.vendor, ", ".join(refused))
        else:
            self.ready.set()

    @property
    def problem(self) -> str | None:
        """Why the broker does not deliver what was subscribed, or None."""
        return f"broker refused subscriptions to {', '.join(self.refused)}" if self.refused else None

