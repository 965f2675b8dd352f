"""Entry point `hub.vendors: mqtt_speaker`: registers the adapter and its simulator with the hub."""
from __future__ import annotations

import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from hub.hookspecs import hookimpl
from hub.access.mqtt_credentials import mosquitto_hash
from hub.simulation import UnsupportedFault, check_faults
from hub.vendor import DeviceRef

from hub_mqtt_speaker.adapter import MqttSpeakerAdapter
from hub_mqtt_speaker.broker import PrivateMosquitto
from hub_mqtt_speaker.device import SimDevice
from hub_mqtt_speaker.simulator import Fleet

# The hub's fault modes (hub/simulation.py) → this simulator's switches.
FAULT_SWITCHES: dict[str, dict[str, Any]] = {
    "ignores_emergency": {"ignore_priority": True},
    "misreports_volume": {"wrong_volume": True},
    "no_heartbeat": {"no_heartbeat": True},
    "mangles_diacritics": {"mangle_text": True},
    "acks_without_acting": {"ack_without_acting": True},
    "silent": {"silent": True},
    "rejects_all": {"reject_all": True},
}
# Not a device's switch: MQTT credentials are checked by the broker, so this fault is the
# installation's (any device asking for it opens the broker to all, as with http_gateway's
# gateway). Only imitated on a broker this process owns (conformance_setup's), never faked.
OPEN_DOOR = "accepts_unauthenticated"


@hookimpl
def register_vendors(register: Callable[[type], None]) -> None:
    register(MqttSpeakerAdapter)


def make_fleet(config: Mapping[str, Any], devices: Iterable[DeviceRef],
               faults: Mapping[str, set[str]] | None = None, status_interval: float = 5.0) -> Fleet:
    """Simulate `devices` behind the broker and prefix an adapter `config` names.

    `accepts_unauthenticated` is only possible on a broker conformance_setup started in this
    process: the simulator then opens that broker to any credentials when it starts (and
    stops the broker when it stops). Anywhere else it is refused (UnsupportedFault)."""
    check_faults(faults, [*FAULT_SWITCHES, OPEN_DOOR])
    open_door = any(OPEN_DOOR in modes for modes in (faults or {}).values())
    host, port = config.get("host", "127.0.0.1"), int(config.get("port", 1883))
    owned = _CERT_BROKERS.get(port) if host in ("127.0.0.1", "localhost") else None
    if open_door and owned is None:
        raise UnsupportedFault(f"{OPEN_DOOR}: MQTT credentials are checked by the broker, and "
                               f"{host}:{port} is not a broker this simulator started (conformance_setup's)")
    sims = []
    for d in devices:
        switches: dict[str, Any] = {}
        for mode in (faults or {}).get(d.address, ()):
            switches.update(FAULT_SWITCHES.get(mode, {}))
        limit = (d.config or {}).get("led_text_max_bytes")  # the panel the registry describes
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 and d.kind == "led_board":
            switches.setdefault("text_max_bytes", limit)
        sims.append(SimDevice(d.address, kind=d.kind, **switches))
    kwargs: dict[str, Any] = dict(host=host, port=port, prefix=config.get("topic_prefix", "hub/mqtt_speaker"),
                                  devices=sims, status_interval=status_interval, username=config.get("username"),
                                  password=config.get("password"))
    if owned is not None:
        prefix = kwargs["prefix"]
        kwargs["before_start"] = lambda: _prepare(owned, prefix, open_door)
        kwargs["after_stop"] = owned.broker.stop
    return Fleet(**kwargs)


@hookimpl
def register_simulators(register: Callable[[str, Any], None]) -> None:
    register(MqttSpeakerAdapter.manifest.name, make_fleet)


# -- certification: a broker of the run's own that demands credentials ----------------------------

@dataclass
class _CertBroker:
    broker: PrivateMosquitto
    username: str
    password: str
    prefixes: list[str]


# Brokers conformance_setup started in this process, by port. Entries stay after the broker
# stopped (tiny), so the suite's report-time probe of fault modes still finds them.
_CERT_BROKERS: dict[int, _CertBroker] = {}


def _acl(username: str, prefixes: Iterable[str]) -> str:
    # One user for the hub and the simulated devices (the Fleet connects every device with one
    # set of credentials), confined to the run's topics; nothing else is granted.
    lines = [f"user {username}"] + [f"topic readwrite {p}/#" for p in prefixes]
    return "\n".join(lines) + "\n"


@hookimpl
def conformance_setup(vendor: str, run_id: str) -> dict[str, Any] | None:
    """For `hub certify mqtt_speaker --simulator`: a Mosquitto of the run's own on a free
    loopback port that refuses anonymous and wrong credentials (so SEC-AUTH-01 can be shown)
    and confines the run's user to the run's topic prefix. It runs until the simulator stops
    (or this process ends: atexit, and the parent-death signal if the process is killed)."""
    if vendor != MqttSpeakerAdapter.manifest.name:
        return None
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id) or uuid.uuid4().hex[:10]
    prefix, username, password = f"hubconf/{tag}", f"hubconf-{tag}", secrets.token_urlsafe(16)
    broker = PrivateMosquitto(users={username: mosquitto_hash(password)}, acl=_acl(username, [prefix]))
    broker.start()  # on failure it has already stopped and removed itself
    _CERT_BROKERS[broker.port] = _CertBroker(broker, username, password, [prefix])
    return {"config": {"host": broker.host, "port": broker.port, "username": username, "password": password,
                       "topic_prefix": prefix}}


def _prepare(owned: _CertBroker, prefix: str, open_door: bool) -> None:
    """Before the simulated devices connect: what the run's effective configuration and faults
    need from the broker, applied by a reload (the hub's connections stay up)."""
    b = owned.broker
    try:
        if prefix not in owned.prefixes:  # a target file chose its own topic prefix
            owned.prefixes.append(prefix)
            b.reload(lambda: _can_use(b.port, owned.username, owned.password, prefix),
                     acl=_acl(owned.username, owned.prefixes))
        if open_door:
            b.reload(lambda: _can_use(b.port, owned.username, f"wrong-{uuid.uuid4().hex[:8]}", prefix),
                     open_door=True)
    except BaseException:
        b.stop()
        raise


def _can_use(port: int, username: str, password: str, prefix: str, timeout: float = 2.0) -> bool:
    """Whether these credentials connect and may publish and read under `prefix` (a message
    published there comes back): how the broker's reloaded configuration is seen in effect."""
    got, connected = threading.Event(), threading.Event()
    topic = f"{prefix}/probe-{uuid.uuid4().hex[:8]}/status"
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hubconf-probe-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv311)
    client.username_pw_set(username, password)
    client.on_connect = lambda c, u, f, rc, p: (connected.set() if not rc.is_failure else None)
    client.on_message = lambda c, u, m: got.set()
    client.on_subscribe = lambda c, u, mid, rcs, p: c.publish(topic, b"probe", qos=1)
    try:
        client.connect("127.0.0.1", port)
        client.loop_start()
        if not connected.wait(timeout):
            return False
        client.subscribe(topic, qos=1)
        return got.wait(timeout)
    except OSError:
        return False
    finally:
        client.disconnect()
        client.loop_stop()
