"""What `register_simulators` hands the hub: a real snapserver on the adapter config's control
port with one real snapclient per device (hostID = device address). Nothing here is simulated
but the loudspeakers' sound cards (a null file player)."""
from __future__ import annotations

import threading
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
        self.streams = streams
        relays = dict(config.get("relay_streams") or {})
        # The idle stream first: snapserver puts new clients on its first stream. Relay streams
        # are plain pipes here (nothing fetches their URLs); a real host runs a process:// source.
        ids = [streams["idle"], *streams.values(), *relays.values()] if "idle" in streams else \
            [*streams.values(), *relays.values()]
        self.relays = dict(relays)  # URL -> stream id
        self.addresses = list(dict.fromkeys(addresses))
        self._halt = threading.Event()
        self._feeders: list[threading.Thread] = []
        self.lab = SnapLab(ids, control_port=int(config.get("control_port", 1705)), start_timeout=start_timeout)
        self.start_timeout = start_timeout

    def start(self) -> None:
        self.lab.start()
        try:
            self.lab.add_clients(self.addresses, timeout=self.start_timeout)
        except Exception:
            self.lab.stop()
            raise
        # On a real host a relay stream's process:// source plays the URL without pause; here
        # a feeder stands in for it, or snapserver would list the relay stream as idle.
        self._halt.clear()
        for stream in dict.fromkeys(self.relays.values()):
            t = threading.Thread(target=self._feed, args=(stream,), name=f"snapcast-relay-{stream}", daemon=True)
            t.start()
            self._feeders.append(t)

    def _feed(self, stream: str) -> None:
        while not self._halt.is_set():
            self.lab.feed(stream, 1.0).join()

    def stop(self) -> None:
        self._halt.set()
        for t in self._feeders:
            t.join(3)
        self._feeders = []
        self.lab.stop()

    # -- for the certification suite: link control and a witness --------------------------------

    def cut_link(self, address: str) -> None:
        """The loudspeaker loses power: its snapclient is killed without a goodbye."""
        self.lab.kill_client(address)

    def restore_link(self, address: str) -> None:
        self.lab.add_clients([address], timeout=self.start_timeout)

    def observe(self, address: str) -> dict[str, Any]:
        """What the client really plays, asked of snapserver on a connection of its own (not
        the adapter's view): its volume setting, and its group's stream — a relay stream
        is `relaying` with its URL as the source, the idle stream `idle`, another `playing`."""
        server = (self.lab.rpc("Server.GetStatus") or {}).get("server") or {}
        idle = dict(self.streams).get("idle")
        for group in server.get("groups") or []:
            for client in group.get("clients") or []:
                if client.get("host", {}).get("name") != address and client.get("id") != address:
                    continue
                volume = (client.get("config") or {}).get("volume") or {}
                stream = group.get("stream_id")
                url = next((u for u, sid in self.relays.items() if sid == stream), None)
                if not client.get("connected"):
                    activity = "off"
                elif url is not None:
                    activity = "relaying"
                elif stream == idle:
                    activity = "idle"
                else:
                    activity = "playing"
                return {"activity": activity, "source": url or stream,
                        "volume": volume.get("percent"), "power": None}
        return {}

    def __enter__(self) -> SnapcastFleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
