"""Device addresses: "host:port/unit", e.g. "127.0.0.1:5020/1" or "[fd00::7]:502/3"."""
from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PORT = 502

_ADDRESS = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]+))"  # [v6] or name / v4
                      r"(?::(?P<port>\d{1,5}))?/(?P<unit>\d{1,3})$")


@dataclass(frozen=True, order=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class BoardAddress:
    endpoint: Endpoint
    unit: int

    def __str__(self) -> str:
        return f"{self.endpoint}/{self.unit}"


def parse_address(address: str) -> BoardAddress:
    """ValueError with the expected form when `address` is not host[:port]/unit."""
    m = _ADDRESS.match(address.strip())
    if m is None:
        raise ValueError(f"address {address!r} is not host:port/unit (e.g. 127.0.0.1:502/1)")
    port = int(m["port"]) if m["port"] else DEFAULT_PORT
    if not 1 <= port <= 65535:
        raise ValueError(f"address {address!r}: port {port} is outside 1-65535")
    unit = int(m["unit"])
    # Unit 0 is broadcast in Modbus: devices never answer it, so no write could be confirmed.
    if not 1 <= unit <= 255:
        raise ValueError(f"address {address!r}: unit {unit} is outside 1-255")
    return BoardAddress(Endpoint(m["v6"] or m["host"], port), unit)
