"""What `register_simulators` hands the hub: a real snapserver on the adapter config's control
port with one real snapclient per device (hostID = device address). Nothing here is simulated
but the loudspeakers' sound cards (a null file player)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hub_snapcast.config import DEFAULT_STREAMS
from hub_snapcast.lab import SnapLab


class SnapcastFleet:
    """start() returns once every device's snapclient is listed connected; stop() ends them all."""

    def __init__(self, config: dict[str, Any], addresses: Iterable[str], start_timeout: float = 30.0) -> None:
        if config.get("host", "127.0.0.1") not in ("127.0.0.1", "localhost"):
            raise ValueError(f"the snapcast simulator runs snapserver on this machine, not on {config['host']}")
        streams = dict(config.get("streams") or DEFAULT_STREAMS)
        relays = dict(config.get("relay_streams") or {})
        # The idle stream first: snapserver puts new clients on its first stream. Relay streams
        # are plain pipes here (nothing fetches their URLs); a real host runs a process:// source.
        ids = [streams["idle"], *streams.values(), *relays.values()] if "idle" in streams else \
            [*streams.values(), *relays.values()]
        self.addresses = list(dict.fromkeys(addresses))
        self.lab = SnapLab(ids, control_port=int(config.get("control_port", 1705)), start_timeout=start_timeout)
        self.start_timeout = start_timeout

    def start(self) -> None:
        self.lab.start()
        try:
            self.lab.add_clients(self.addresses, timeout=self.start_timeout)
        except Exception:
            self.lab.stop()
            raise

    def stop(self) -> None:
        self.lab.stop()

    def __enter__(self) -> SnapcastFleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
