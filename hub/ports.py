"""Loopback ports for servers that tests, simulators and the demo start, stop and start again.

A port the kernel hands out for `bind(0)` comes from its ephemeral range, the same range it
draws the source ports of outgoing connections from. While a simulator on such a port is down,
any client on the machine may take that number as its own source port, and a client that keeps
retrying the port can even connect to itself (TCP simultaneous open). The simulator then cannot
come back: "address already in use". A fault drill stops servers on purpose, so its ports come
from below the ephemeral range, where the kernel never picks a source port by itself.
"""
from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10000  # above the well-known and most registered service ports of a developer's machine


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for source ports (Linux default 32768–60999)."""
    try:
        low, high = (int(x) for x in _RANGE_FILE.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` with nothing bound to it, outside the ephemeral range when there is room.

    Random rather than sequential, so that parallel test workers rarely try the same number;
    the bind test makes a collision with anything already listening impossible.
    """
    low, high = ephemeral_range()
    spans = [(lo, hi) for lo, hi in ((_LOWEST, low - 1), (high + 1, 65535)) if hi - lo >= 1000]
    for _ in range(200):
        if not spans:
            break
        lo, hi = random.choice(spans)
        port = random.randint(lo, hi)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # a machine whose whole range is ephemeral: the kernel's choice
        s.bind((host, 0))
        return int(s.getsockname()[1])
