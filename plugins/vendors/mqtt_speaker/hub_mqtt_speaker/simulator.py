"""A fleet of simulated MQTT IP speakers and LED boards in one process.

Each device has its own MQTT connection (so each has its own last will), and all of them are
driven from one thread with `selectors` and paho's manual loop API. Independent of `hub`.

    fleet = Fleet("127.0.0.1", 1883, "hub/mqtt_speaker",
                  devices=[SimDevice("SPK0001"), SimDevice("LED0001", kind="led_board")])
    fleet.start()
    ...
    fleet.device("SPK0001").volume
    fleet.kill("SPK0001"); fleet.revive("SPK0001")
    fleet.stop()
"""
from __future__ import annotations

import logging
import random
import ssl
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt

from hub_mqtt_speaker import protocol, stream
from hub_mqtt_speaker._loop import READ, WRITE, EventLoop, TimerHandle
from hub_mqtt_speaker.device import Behaviour, DeviceState, SimDevice, set_faults
from hub_mqtt_speaker.fetch import MediaFetch, fetch_media

log = logging.getLogger(__name__)

_MISC_INTERVAL_S = 1.0  # how often keepalive bookkeeping runs for every connection
_BACKOFF_MIN_S, _BACKOFF_MAX_S = 0.5, 30.0
_FAREWELL_TIMEOUT_S = 2.0


class _Link:
    """One device's MQTT connection and its firmware."""

    __slots__ = ("behaviour", "client", "phase", "backoff", "heartbeat", "retry")

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.client: mqtt.Client | None = None
        # new | queued | connecting | connected | down | killed | stopping | stopped
        self.phase = "new"
        self.backoff = _BACKOFF_MIN_S
        self.heartbeat: TimerHandle | None = None
        self.retry: TimerHandle | None = None

    @property
    def address(self) -> str:
        return self.behaviour.spec.address


class Fleet:
    """Many simulated devices, one loop thread. Public methods are safe to call from any thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, prefix: str = "hub/mqtt_speaker",
                 devices: Iterable[SimDevice] = (), status_interval: float = 5.0, *,
                 username: str | None = None, password: str | None = None, tls: bool = False,
                 ca_file: str | None = None, keepalive: int = 30, connect_rate: float = 250.0,
                 max_connecting: int = 64, client_id_format: str = "{prefix}/{address}",
                 before_start: Callable[[], None] | None = None,
                 after_stop: Callable[[], None] | None = None) -> None:
        problem = protocol.prefix_problem(prefix)
        if problem:
            raise ValueError(problem)
        self.host, self.port, self.prefix = host, port, prefix
        self.status_interval = status_interval
        self.username, self.password, self.tls, self.ca_file = username, password, tls, ca_file
        self.keepalive = keepalive
        self.connect_rate = connect_rate
        self.max_connecting = max_connecting
        # A broker keeps one session per client id and drops the older one when a second connects:
        # two fleets beside each other on one broker (parallel tests, the demo) must never share one.
        self.client_id_format = client_id_format
        # For whoever runs the broker for this fleet (certification's private broker): prepare
        # it before the devices connect, and stop it once they are gone, even if start failed.
        self._before_start, self._after_stop = before_start, after_stop
        self._loop = EventLoop("hub-mqtt-sim")
        self._links: dict[str, _Link] = {}
        for spec in devices:
            if spec.address in self._links:
                raise ValueError(f"device address {spec.address} appears twice")
            self._links[spec.address] = _Link(Behaviour(spec, self))
        self._cond = threading.Condition()
        self._ever_connected: set[str] = set()
        self._socks: set[Any] = set()
        self._connecting = 0
        self._pending: deque[_Link] = deque()
        self._tokens = 0.0
        self._pump_at = 0.0
        self._pump_timer: TimerHandle | None = None
        self._last_error: str | None = None
        self._started = False
        self._stopped = False
        self._fetcher: ThreadPoolExecutor | None = None  # made at the first audio fetch

    # -- public API ------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Connect every device (at most `connect_rate` per second) and return once all are
        connected. Raises TimeoutError, after stopping the fleet, if that takes over `timeout`."""
        if self._started or self._stopped:
            raise RuntimeError("a Fleet starts once; make a new one to start again")
        if self._before_start is not None:
            self._before_start()
        self._started = True
        began = time.monotonic()
        self._loop.start()
        self._loop.run_sync(self._begin)
        total = len(self._links)
        with self._cond:
            done = self._cond.wait_for(lambda: len(self._ever_connected) >= total, timeout)
            connected = len(self._ever_connected)
        if not done:
            self.stop(timeout=5.0)
            raise TimeoutError(f"only {connected} of {total} simulated devices connected to "
                               f"{self.host}:{self.port} within {timeout:g}s"
                               + (f"; last error: {self._last_error}" if self._last_error else ""))
        log.info("%d devices connected in %.2fs", total, time.monotonic() - began)

    def stop(self, timeout: float = 10.0, clear_retained: bool = False) -> None:
        """Disconnect every device cleanly: each publishes online "0" (or, with `clear_retained`,
        an empty retained message that removes its presence from the broker) and then DISCONNECT,
        so no last will fires."""
        try:
            self._stop(timeout, clear_retained)
        finally:
            hook, self._after_stop = self._after_stop, None
            if hook is not None:
                hook()

    def _stop(self, timeout: float, clear_retained: bool) -> None:
        for link in list(self._links.values()):  # relay streams read on threads of their own
            stream.follow(link.behaviour.state.streams, None)
        if self._fetcher is not None:
            self._fetcher.shutdown(wait=False, cancel_futures=True)
        if not self._started:
            return
        self._started, self._stopped = False, True
        try:
            if self._loop.running:
                self._loop.run_sync(lambda: self._shutdown(clear_retained), timeout=timeout)
                with self._cond:
                    self._cond.wait_for(lambda: not self._socks, timeout)
        except TimeoutError:
            log.warning("fleet did not disconnect cleanly within %gs; dropping connections", timeout)
        finally:
            try:
                self._loop.run_sync(self._abandon_all, timeout=2.0)
            except TimeoutError:
                pass  # the loop is wedged (a blocking connect); its daemon thread dies with us
            self._loop.stop(2.0)
            if not self._loop.running:
                self._loop.close()

    def kill(self, address: str) -> None:
        """Drop the device's TCP connection without DISCONNECT, as a power cut or a lost 4G
        link would, so the broker publishes its last will (online "0")."""
        self._loop.run_sync(lambda: self._kill(self._link(address)))

    def revive(self, address: str, timeout: float | None = 10.0) -> None:
        """Reconnect a killed device; waits until it is connected unless timeout is None."""
        link = self._link(address)
        before = link.behaviour.state.connects
        if not self._loop.run_sync(lambda: self._revive(link)) or timeout is None:
            return
        with self._cond:
            if not self._cond.wait_for(lambda: link.behaviour.state.connects > before, timeout):
                raise TimeoutError(f"device {address} did not reconnect within {timeout:g}s")

    def device(self, address: str) -> DeviceState:
        """The live state of a device (volume, activity, source, led_text, commands, ...)."""
        return self._link(address).behaviour.state

    def devices(self) -> list[DeviceState]:
        return [link.behaviour.state for link in self._links.values()]

    @property
    def addresses(self) -> list[str]:
        return list(self._links)

    def connected_count(self) -> int:
        return sum(1 for link in self._links.values() if link.phase == "connected")

    def set_faults(self, address: str, **switches: Any) -> None:
        """Turn fault switches on or off for a running device, e.g. set_faults(a, silent=True)."""
        spec = self._link(address).behaviour.spec
        self._loop.run_sync(lambda: set_faults(spec, **switches))

    def publish_as(self, address: str, kind: str, payload: bytes, retain: bool = False) -> None:
        """Publish raw bytes on the device's own `kind` topic (tests send malformed payloads)."""
        link = self._link(address)

        def go() -> None:
            if link.client is None or link.phase != "connected":
                raise RuntimeError(f"device {address} is not connected")
            link.client.publish(self._topic(address, kind), payload, qos=protocol.QOS, retain=retain)

        self._loop.run_sync(go)

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- Host protocol, used by device.Behaviour (loop thread) ------------------------------

    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        return self._loop.call_later(delay, fn)

    def publish_ack(self, state: DeviceState, payload: dict[str, Any]) -> None:
        if self._publish(state.address, protocol.ACK, protocol.encode(payload)):
            state.acks_sent += 1

    def publish_status(self, state: DeviceState) -> None:
        if state.spec.silent:
            return
        link = self._links[state.address]
        if self._publish(state.address, protocol.STATUS, protocol.encode(link.behaviour.status_payload())):
            state.statuses_sent += 1

    def fetch_media(self, url: str, sha256: str | None, done: Callable[[MediaFetch], None]) -> None:
        if self._fetcher is None:
            self._fetcher = ThreadPoolExecutor(max_workers=8, thread_name_prefix="hub-mqtt-sim-fetch")

        def work() -> None:
            got = fetch_media(url, sha256)
            self._loop.call_soon_threadsafe(lambda: done(got))

        self._fetcher.submit(work)

    # -- internals (loop thread) -------------------------------------------------------------

    def _link(self, address: str) -> _Link:
        try:
            return self._links[address]
        except KeyError:
            raise KeyError(f"no simulated device {address!r}") from None

    def _topic(self, address: str, kind: str) -> str:
        return protocol.topic(self.prefix, address, kind)

    def _publish(self, address: str, kind: str, payload: bytes, retain: bool = False) -> bool:
        link = self._links[address]
        if link.client is None or link.phase != "connected":
            return False  # offline devices lose what they would have said, like real ones
        link.client.publish(self._topic(address, kind), payload, qos=protocol.QOS, retain=retain)
        return True

    def _begin(self) -> None:
        for link in self._links.values():
            link.phase = "queued"
            self._pending.append(link)
        self._pump_at = time.monotonic()
        self._pump()
        self._misc_sweep()

    def _pump(self) -> None:
        """Start queued connections at a bounded rate and concurrency so a fleet of thousands
        does not flood the broker's accept backlog."""
        self._pump_timer = None
        now = time.monotonic()
        burst = max(1.0, self.connect_rate / 10)
        self._tokens = min(burst, self._tokens + (now - self._pump_at) * self.connect_rate)
        self._pump_at = now
        while self._pending and self._tokens >= 1 and self._connecting < self.max_connecting:
            link = self._pending.popleft()
            if link.phase != "queued":
                continue
            self._tokens -= 1
            self._connect(link)
        if self._pending and self._pump_timer is None:
            self._pump_timer = self._loop.call_later(0.01, self._pump)

    def _new_client(self, link: _Link) -> mqtt.Client:
        address = link.address
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=self.client_id_format.format(address=address, prefix=self.prefix),
                             protocol=mqtt.MQTTv311, clean_session=True, userdata=link)
        client.will_set(self._topic(address, protocol.ONLINE), protocol.OFFLINE_PAYLOAD,
                        qos=protocol.QOS, retain=True)
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set(ca_certs=self.ca_file)
        # Connects block the shared loop thread, so an unresponsive broker must fail fast.
        client.connect_timeout = 2.0
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write
        return client

    def _connect(self, link: _Link) -> None:
        client = self._new_client(link)
        link.client = client
        link.phase = "connecting"
        self._connecting += 1
        try:
            # A blocking TCP connect, but to a nearby broker it takes microseconds; the rate
            # limit above keeps the total bounded.
            client.connect(self.host, self.port, keepalive=self.keepalive)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._connecting -= 1
            link.client = None
            self._last_error = f"{self.host}:{self.port}: {exc}"
            self._schedule_retry(link)

    def _schedule_retry(self, link: _Link) -> None:
        if link.phase in ("killed", "stopping", "stopped"):
            return
        link.phase = "down"
        delay = link.backoff * random.uniform(0.8, 1.2)
        link.backoff = min(_BACKOFF_MAX_S, link.backoff * 2)

        def again() -> None:
            link.retry = None
            if link.phase == "down":
                link.phase = "queued"
                self._pending.append(link)
                if self._pump_timer is None:
                    self._pump()

        link.retry = self._loop.call_later(delay, again)

    def _on_socket_open(self, client: mqtt.Client, link: _Link, sock: Any) -> None:
        def ready(mask: int) -> None:
            # The client is bound here, not looked up: a stale event for a replaced connection
            # then reaches a client whose socket is gone, which is a harmless no-op.
            if mask & READ:
                client.loop_read()
            if mask & WRITE and client.socket() is not None:
                client.loop_write()

        self._loop.register(sock, READ, ready)
        with self._cond:
            self._socks.add(sock)

    def _on_socket_close(self, client: mqtt.Client, link: _Link, sock: Any) -> None:
        self._loop.unregister(sock)
        with self._cond:
            self._socks.discard(sock)
            self._cond.notify_all()

    def _abandon(self, client: mqtt.Client) -> None:
        """Close a client's socket under paho's feet, so no DISCONNECT goes out, and cut the
        client loose: it is never driven again, and its callbacks must not fire when it is
        garbage-collected (paho closes its socket again in __del__)."""
        for name in ("on_connect", "on_subscribe", "on_publish", "on_disconnect", "on_message",
                     "on_socket_open", "on_socket_close",
                     "on_socket_register_write", "on_socket_unregister_write"):
            setattr(client, name, None)
        sock = client.socket()
        if sock is None:
            return
        self._loop.unregister(sock)
        sock.close()
        with self._cond:
            self._socks.discard(sock)
            self._cond.notify_all()

    def _on_socket_register_write(self, client: mqtt.Client, link: _Link, sock: Any) -> None:
        self._loop.modify(sock, READ | WRITE)

    def _on_socket_unregister_write(self, client: mqtt.Client, link: _Link, sock: Any) -> None:
        self._loop.modify(sock, READ)

    def _on_connect(self, client: mqtt.Client, link: _Link, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if link.client is not client:
            return
        if reason_code.is_failure:
            self._connect_failed(link, client, f"broker refused {link.address}: {reason_code}")
            return
        # Not live yet: announcing presence before the command subscription is granted would
        # invite commands the broker drops for want of a subscriber.
        client.subscribe(self._topic(link.address, protocol.CMD), qos=protocol.QOS)

    def _on_subscribe(self, client: mqtt.Client, link: _Link, mid: int, reason_codes: list[Any],
                      properties: Any) -> None:
        if link.client is not client or link.phase != "connecting":
            return
        if any(rc.is_failure for rc in reason_codes):
            self._connect_failed(link, client, f"broker refused the command subscription of {link.address}")
            return
        self._connecting -= 1
        link.phase = "connected"
        link.backoff = _BACKOFF_MIN_S
        state = link.behaviour.state
        state.connected = True
        client.publish(self._topic(link.address, protocol.ONLINE), protocol.ONLINE_PAYLOAD,
                       qos=protocol.QOS, retain=True)
        self.publish_status(state)
        if link.heartbeat is not None:
            link.heartbeat.cancel()
        # Staggered so a fleet that connected together does not report in lockstep.
        link.heartbeat = self._loop.call_later(random.uniform(0, self.status_interval),
                                               lambda: self._heartbeat(link))
        with self._cond:
            state.connects += 1
            self._ever_connected.add(link.address)
            self._cond.notify_all()
        if self._pending and self._pump_timer is None:
            self._pump()

    def _connect_failed(self, link: _Link, client: mqtt.Client, why: str) -> None:
        self._last_error = why
        log.warning("%s", why)
        if link.phase == "connecting":
            self._connecting -= 1
        link.client = None
        client.disconnect()
        self._schedule_retry(link)

    def _on_disconnect(self, client: mqtt.Client, link: _Link, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        if link.client is not client:
            return
        if link.phase == "connecting":
            self._connecting -= 1
        link.behaviour.state.connected = False
        link.client = None
        if link.phase == "stopping":
            link.phase = "stopped"
            return
        self._last_error = f"{link.address} lost its connection: {reason_code}"
        self._schedule_retry(link)

    def _on_message(self, client: mqtt.Client, link: _Link, msg: mqtt.MQTTMessage) -> None:
        if link.client is client:
            link.behaviour.on_command(msg.payload)

    def _heartbeat(self, link: _Link) -> None:
        link.heartbeat = self._loop.call_later(self.status_interval, lambda: self._heartbeat(link))
        if link.phase == "connected" and not link.behaviour.spec.no_heartbeat:
            self.publish_status(link.behaviour.state)

    def _misc_sweep(self) -> None:
        for link in self._links.values():
            if link.client is not None and link.client.socket() is not None:
                link.client.loop_misc()
        self._loop.call_later(_MISC_INTERVAL_S, self._misc_sweep)

    def _kill(self, link: _Link) -> None:
        for timer in (link.heartbeat, link.retry):
            if timer is not None:
                timer.cancel()
        link.heartbeat = link.retry = None
        was_connecting = link.phase == "connecting"
        link.phase = "killed"
        link.behaviour.state.connected = False
        client, link.client = link.client, None
        if was_connecting:
            self._connecting -= 1
        if client is not None:
            self._abandon(client)

    def _revive(self, link: _Link) -> bool:
        """Start connecting `link` now, unless under way; False when already connected."""
        if link.phase == "connected":
            return False
        if link.phase == "connecting":
            return True
        if link.retry is not None:
            link.retry.cancel()
            link.retry = None
        link.backoff = _BACKOFF_MIN_S
        self._connect(link)
        return True

    def _shutdown(self, clear_retained: bool) -> None:
        self._pending.clear()
        live = [link for link in self._links.values() if link.phase == "connected" and link.client]
        farewell = b"" if clear_retained else protocol.OFFLINE_PAYLOAD
        if clear_retained and live:
            # Devices that are down cannot clear their own presence; a live neighbour does it.
            helper = live[0].client
            assert helper is not None
            for link in self._links.values():
                if link not in live and link.address in self._ever_connected:
                    helper.publish(self._topic(link.address, protocol.ONLINE), b"", qos=protocol.QOS, retain=True)
        for link in self._links.values():
            for timer in (link.heartbeat, link.retry):
                if timer is not None:
                    timer.cancel()
            link.heartbeat = link.retry = None
            client = link.client
            if link in live and client is not None:
                info = client.publish(self._topic(link.address, protocol.ONLINE), farewell,
                                      qos=protocol.QOS, retain=True)
                link.phase = "stopping"
                # DISCONNECT only once the broker has confirmed the farewell: mosquitto logs a
                # QoS 1 publish cut short by DISCONNECT as "out of memory", which misleads.
                client.on_publish = self._disconnect_after(info.mid)
                self._loop.call_later(_FAREWELL_TIMEOUT_S, self._disconnect_later(client))
            elif client is not None:
                link.phase = "stopping"
                client.disconnect()
            else:
                link.phase = "stopped"
            link.behaviour.state.connected = False

    @staticmethod
    def _disconnect_later(client: mqtt.Client) -> Callable[[], None]:
        def go() -> None:
            client.disconnect()
        return go

    @staticmethod
    def _disconnect_after(mid: int) -> Callable[..., None]:
        def on_publish(client: mqtt.Client, link: _Link, acked: int, reason_code: Any, properties: Any) -> None:
            if acked == mid:
                client.disconnect()
        return on_publish

    def _abandon_all(self) -> None:
        """Close whatever did not finish disconnecting in time."""
        for link in self._links.values():
            client, link.client = link.client, None
            if client is not None:
                self._abandon(client)
            link.phase = "stopped"


def main(argv: list[str] | None = None) -> int:
    """The `hub-mqtt-sim` command (kept in simcli.py; this is its stable entry point)."""
    from hub_mqtt_speaker.simcli import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
