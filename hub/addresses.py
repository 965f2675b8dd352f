"""Device addresses: the form each plugin declares in its manifest, and the province's policy of
where a device may be. A device address is data an administrator of one commune types in, yet
the hub's processes open whatever it names; so the hub checks it when a device comes in (API,
CLI import, registry) and the plugin checks it again before it opens anything (rows stored by an
earlier release were never checked).

The policy: serial ports only under configured path prefixes (`device_serial_prefixes`); network
endpoints only at hosts and ports the province lists (`device_networks`, empty by default: no
network device until configured); and never the hub's own services (Redis, the database, an MQTT
broker a plugin uses, the API), whatever the allow-list says.
"""
from __future__ import annotations

import functools
import ipaddress
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

DEFAULT_SERIAL_PREFIXES = ("/dev/ttyUSB", "/dev/ttyACM", "/dev/ttyS", "/dev/ttyAMA", "/dev/serial/by-id/",
                           "/dev/serial/by-path/")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
_SERIAL_PATH = re.compile(r"^/[A-Za-z0-9._/:+-]+$")
_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:/\[\]]+))(?::(?P<port>[^/]*))?$")


class AddressError(ValueError):
    """An address breaks its plugin's declared form or the province's policy. `rule` names the
    rule (e.g. `scheme`, `network_not_allowed`, `hub_service`), the message says what to do."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


# -- the province's policy ---------------------------------------------------------------------
@dataclass(frozen=True)
class NetRule:
    """One `device_networks` entry: a network (or address) or a host name, optionally with ports."""

    text: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    name: str | None
    ports: tuple[int, int] | None

    def matches(self, host: str, port: int) -> bool:
        if self.ports is not None and not self.ports[0] <= port <= self.ports[1]:
            return False
        if self.name is not None:
            return host.lower().rstrip(".") == self.name
        ip = _ip(host)
        return ip is not None and self.network is not None and ip.version == self.network.version \
            and ip in self.network


def parse_net_rule(text: str) -> NetRule:
    """`10.80.0.0/16`, `10.80.3.7:502`, `[fd00::/8]:502`, `gw.vendor.vn:443`, `127.0.0.1:1024-65535`."""
    raw = str(text).strip()
    try:  # a bare network or address, IPv6 ones without brackets included
        return NetRule(raw, ipaddress.ip_network(raw, strict=False), None, None)
    except ValueError:
        pass
    m = re.match(r"^\[(?P<v6>[^\]]+)\](?::(?P<p6>.+))?$", raw) or \
        re.match(r"^(?P<h>[^:]+)(?::(?P<p>.+))?$", raw)
    if m is None:
        raise ValueError(f"{text!r} is not NETWORK[:PORTS] or HOST[:PORTS] (e.g. 10.80.0.0/16:502)")
    host = m.groupdict().get("v6") or m.groupdict().get("h") or ""
    ports_text = m.groupdict().get("p6") or m.groupdict().get("p")
    ports = None
    if ports_text:
        pm = re.match(r"^(\d{1,5})(?:-(\d{1,5}))?$", ports_text)
        if pm is None:
            raise ValueError(f"{text!r}: ports must be N or N-M")
        lo, hi = int(pm[1]), int(pm[2] or pm[1])
        if not 1 <= lo <= hi <= 65535:
            raise ValueError(f"{text!r}: ports must lie within 1-65535, low to high")
        ports = (lo, hi)
    try:
        return NetRule(raw, ipaddress.ip_network(host, strict=False), None, ports)
    except ValueError:
        pass
    if not _HOSTNAME.match(host) or host.replace(".", "").isdigit():
        raise ValueError(f"{text!r}: {host!r} is neither a network nor a host name")
    return NetRule(raw, None, host.lower().rstrip("."), ports)


@dataclass(frozen=True)
class Service:
    """One of the hub's own endpoints: never a device."""

    label: str
    host: str
    port: int


@dataclass(frozen=True)
class AddressPolicy:
    serial_prefixes: tuple[str, ...] = DEFAULT_SERIAL_PREFIXES
    networks: tuple[NetRule, ...] = ()
    services: tuple[Service, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> AddressPolicy:
        """The policy of a hub's settings (hub.config.Settings); ValueError on a bad entry."""
        return cls(tuple(settings.device_serial_prefixes), tuple(parse_net_rule(n) for n in settings.device_networks),
                   tuple(hub_services(settings)))

    def check_serial_path(self, path: str) -> None:
        if not _SERIAL_PATH.match(path) or os.path.normpath(path) != path:
            raise AddressError("serial_path", f"serial port {path!r} must be an absolute device path without "
                                              "'..', spaces or other symbols")
        if not any(path.startswith(p) for p in self.serial_prefixes):
            allowed = ", ".join(self.serial_prefixes) or "none configured"
            raise AddressError("serial_prefix", f"serial port {path!r} is not under device_serial_prefixes "
                                                f"({allowed})")

    def own_service(self, host: str, port: int) -> str | None:
        """Which of the hub's own services (Redis, database, API, a broker) host:port is, if any."""
        for svc in self.services:
            if svc.port == port and _same_host(host, svc.host):
                return svc.label
        return None

    def check_endpoint(self, host: str, port: int, what: str = "address") -> None:
        """AddressError unless host:port may be a device (or a gateway the hub talks to)."""
        host = host.strip()
        if not valid_host(host):
            raise AddressError("host", f"{what}: host {host!r} is not an IP address or a host name")
        ip = _ip(host)
        if ip is not None and (ip.is_unspecified or ip.is_multicast
                               or (ip.version == 4 and ip == ipaddress.IPv4Address("255.255.255.255"))):
            raise AddressError("host", f"{what}: {host} cannot be a device's host")
        if not 1 <= port <= 65535:
            raise AddressError("port", f"{what}: port {port} is outside 1-65535")
        own = self.own_service(host, port)
        if own is not None:
            raise AddressError("hub_service", f"{what}: {_join(host, port)} is the hub's own {own}; "
                                              "a device can never be one")
        if not any(rule.matches(host, port) for rule in self.networks):
            allowed = ", ".join(r.text for r in self.networks) or "none configured"
            raise AddressError("network_not_allowed", f"{what}: {_join(host, port)} is not in device_networks "
                                                      f"(the hosts and ports this province allows: {allowed})")


def hub_services(settings: Any) -> list[Service]:
    """Redis, the database, the API and every plugin's MQTT broker (a plugin config with `host`
    and `port`), as configured."""
    out: list[Service] = []
    for label, url, default in (("Redis (redis_url)", settings.redis_url, 6379),
                                ("database (database_url)", settings.database_url, None)):
        try:
            parts = urlsplit(url or "")
            host, port = parts.hostname, parts.port
        except ValueError:
            continue
        if host:
            port = port or default or {"postgresql": 5432, "mysql": 3306}.get(parts.scheme.split("+")[0])
            if port:
                out.append(Service(label, host, port))
    m = _HOST_PORT.match(str(getattr(settings, "api_listen", "") or ""))
    if m and (m["port"] or "").isdigit():
        out.append(Service("API (api_listen)", m["v6"] or m["host"], int(m["port"])))
    for name, cfg in (settings.plugins or {}).items():
        if isinstance(cfg, dict) and cfg.get("host") and str(cfg.get("port", "")).isdigit():
            out.append(Service(f"MQTT broker (plugins.{name})", str(cfg["host"]), int(cfg["port"])))
    # where MQTT plugins look when their host/port are left out
    out += [Service("MQTT broker (default port)", "127.0.0.1", p) for p in (1883, 8883)]
    return out


def valid_host(host: str) -> bool:
    if _ip(host) is not None:
        return True
    # `2130706433`, `127.1` or `0x7f.1` reach 127.0.0.1 through inet_aton: only dotted quads, please
    try:
        socket.inet_aton(host)
        return False
    except OSError:
        pass
    return bool(_HOSTNAME.match(host)) and not host.replace(".", "").isdigit()


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if host.lower().rstrip(".") == "localhost":
        return ipaddress.IPv4Address("127.0.0.1")
    try:
        ip = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@functools.lru_cache(maxsize=1)
def _own_ips() -> frozenset[str]:
    ips = {"127.0.0.1", "::1", "0.0.0.0", "::"}
    try:
        ips.update(a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None))
    except OSError:
        pass
    return frozenset(ips)


def _resolve(host: str) -> set[str]:
    ip = _ip(host)
    if ip is not None:
        return {str(ip)}
    try:
        return {str(_ip(a[4][0]) or a[4][0]) for a in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return set()


def _is_local(ips: Iterable[str]) -> bool:
    for a in ips:
        ip = _ip(a)
        if ip is not None and (ip.is_loopback or ip.is_unspecified or str(ip) in _own_ips()):
            return True
    return False


def _same_host(host: str, service_host: str) -> bool:
    if host.lower().rstrip(".") == service_host.lower().rstrip("."):
        return True
    mine, theirs = _resolve(host), _resolve(service_host)
    return bool(mine & theirs) or (_is_local(mine) and _is_local(theirs))


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(text: str, default_port: int | None, what: str = "address") -> tuple[str, int]:
    m = _HOST_PORT.match(text)
    if m is None or (m["port"] is None and default_port is None) or (m["port"] is not None
                                                                     and not m["port"].isdigit()):
        raise AddressError("form", f"{what}: {text!r} is not host:port")
    return (m["v6"] or m["host"]), int(m["port"]) if m["port"] is not None else int(default_port or 0)


# -- the forms a plugin declares (Manifest.address) ----------------------------------------------
def _printable(address: str) -> None:
    if not isinstance(address, str) or not address:
        raise AddressError("empty", "must not be empty")
    if not address.isprintable() or address != address.strip():
        raise AddressError("characters", "must not contain control characters (CR, LF, NUL…) or surrounding spaces")


@dataclass(frozen=True)
class AddressSchema:
    """Base of the declared forms. `check` raises AddressError naming the rule broken."""

    kind: ClassVar[str] = "text"
    max_length: int = 255
    description: str = "printable text without control characters"

    def check(self, address: str, policy: AddressPolicy) -> None:
        _printable(address)
        if len(address) > self.max_length:
            raise AddressError("length", f"must be at most {self.max_length} characters")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "max_length": self.max_length, "description": self.description}


@dataclass(frozen=True)
class IdentifierAddress(AddressSchema):
    """A name a vendor's gateway or server knows the device by; the hub never connects to it."""

    kind: ClassVar[str] = "identifier"
    max_length: int = 128
    description: str = "the device's id at the vendor's gateway or server"


@dataclass(frozen=True)
class TopicSegmentAddress(AddressSchema):
    """One level of an MQTT topic (and usually the device's client id)."""

    kind: ClassVar[str] = "mqtt_topic_segment"
    max_length: int = 128
    description: str = "one MQTT topic level: no '/', '+', '#', NUL, not empty"

    def check(self, address: str, policy: AddressPolicy) -> None:
        if isinstance(address, str) and address and set(address) & set("/+#\x00"):
            raise AddressError("mqtt_topic_segment", "must be one MQTT topic level: no '/', '+', '#' or NUL")
        super().check(address, policy)


@dataclass(frozen=True)
class EndpointAddress(AddressSchema):
    """`host[:port][/unit]` of a device on the network; host:port must be allowed by the policy."""

    kind: ClassVar[str] = "network_endpoint"
    max_length: int = 300
    default_port: int | None = None
    unit: bool = False  # a `/unit` part (Modbus unit id) follows
    unit_required: bool = False
    description: str = "host:port of a device the province's device_networks allow"

    def check(self, address: str, policy: AddressPolicy) -> None:
        super().check(address, policy)
        text, unit = address, None
        if self.unit and "/" in address:
            text, _, unit = address.rpartition("/")
            if not unit.isdigit() or not unit.isascii():
                raise AddressError("form", f"unit {unit!r} must be a decimal number")
        elif self.unit_required:
            raise AddressError("form", "must be host:port/unit")
        if "://" in address or "@" in address:
            raise AddressError("scheme", "must be host:port, without a scheme or credentials")
        host, port = split_host_port(text, self.default_port)
        policy.check_endpoint(host, port)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "default_port": self.default_port, "unit": self.unit}


@dataclass(frozen=True)
class SerialAddress(AddressSchema):
    """`PORT#BOARD`: PORT is a device path under the policy's serial prefixes, or a URL of one of
    `url_schemes` (pyserial's `socket://host:port`, a serial-over-TCP converter) to an allowed
    endpoint. Every other pyserial scheme (spy://, loop://, rfc2217://, hwgrep://, alt://…) is
    refused: they read files, write logs or search for ports."""

    kind: ClassVar[str] = "serial_port"
    url_schemes: tuple[str, ...] = ("socket",)
    board_separator: str = "#"
    description: str = "PORT#BOARD, PORT a serial device path or socket://host:port"

    def check(self, address: str, policy: AddressPolicy) -> None:
        super().check(address, policy)
        port, sep, board = address.rpartition(self.board_separator)
        if not sep or not board.isdigit() or not board.isascii():
            raise AddressError("form", f"must be PORT{self.board_separator}BOARD, BOARD a decimal number")
        self.check_port(port, policy)

    def check_port(self, port: str, policy: AddressPolicy) -> None:
        if "://" in port:
            scheme, _, rest = port.partition("://")
            if scheme.lower() not in self.url_schemes:
                allowed = ", ".join(f"{s}://" for s in self.url_schemes) or "none"
                raise AddressError("scheme", f"port URL scheme {scheme}:// is refused (allowed: a device path, "
                                             f"{allowed})")
            if not re.match(r"^[^/?#@\s]+$", rest):
                raise AddressError("form", f"port URL {port!r} must be {scheme}://host:port with no path, "
                                           "query or credentials")
            host, number = split_host_port(rest, None, "port URL")
            policy.check_endpoint(host, number)
            return
        policy.check_serial_path(port)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "url_schemes": list(self.url_schemes)}


DEFAULT_SCHEMA = AddressSchema()  # what the hub applies to a plugin that declares no form


def check_address(schema: AddressSchema | None, address: str, policy: AddressPolicy) -> None:
    (schema or DEFAULT_SCHEMA).check(address, policy)


# -- the policy a plugin sees when the hub did not hand it one (an adapter built by hand) ---------
_default: AddressPolicy | None = None


def default_policy() -> AddressPolicy:
    if _default is not None:
        return _default
    from hub.config import get_settings

    return AddressPolicy.from_settings(get_settings())


def set_default_policy(policy: AddressPolicy | None) -> None:
    """For tests that build adapters by hand: the policy they check addresses against."""
    global _default
    _default = policy


__all__ = ["AddressError", "AddressPolicy", "AddressSchema", "EndpointAddress", "IdentifierAddress", "NetRule",
           "SerialAddress", "Service", "TopicSegmentAddress", "check_address", "default_policy",
           "parse_net_rule", "set_default_policy"]
