"""Entry point `hub.vendors: http_gateway`: registers the adapter and its gateway simulator."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from hub.hookspecs import hookimpl
from hub.simulation import check_faults
from hub.vendor import DeviceRef

from hub_http_gateway.adapter import HttpGatewayAdapter
from hub_http_gateway.simulator import GatewaySim


@hookimpl
def register_vendors(register: Callable[[type], None]) -> None:
    register(HttpGatewayAdapter)


# The hub's fault modes (hub/simulation.py) → the simulated gateway's per-device switches.
DEVICE_FAULTS = {"misreports_volume": "wrong_volume", "acks_without_acting": "ack_without_acting"}


def make_gateway(config: dict[str, Any], devices: Iterable[DeviceRef], faults: dict[str, set[str]] | None = None,
                 *, certfile: str | None = None, keyfile: str | None = None,
                 status_interval: float | None = None) -> GatewaySim:
    """A simulated gateway serving `devices` where the adapter `config` expects it: the host, port
    and path of its base_url, with its api_key. https needs `certfile`. `accepts_unauthenticated`
    is a fault of the gateway as a whole: any device asking for it turns it on. `status_interval`
    (seconds) is how often an idle device reports to the gateway (the simulator's default, 5 s,
    when not given): the certification suite passes its heartbeat interval."""
    check_faults(faults, [*DEVICE_FAULTS, "accepts_unauthenticated"])
    base_url, api_key = config.get("base_url"), config.get("api_key")
    if not base_url or not api_key:
        raise ValueError("the gateway simulator needs base_url and api_key in the config")
    parts = urlsplit(base_url)
    if parts.scheme == "https" and not certfile:
        raise ValueError("base_url is https: give make_gateway a certfile (and keyfile) to serve it")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    per_device: dict[str, list[str]] = {switch: [] for switch in DEVICE_FAULTS.values()}
    for address, modes in (faults or {}).items():
        for mode in modes:
            if mode in DEVICE_FAULTS:
                per_device[DEVICE_FAULTS[mode]].append(address)
    open_door = any("accepts_unauthenticated" in modes for modes in (faults or {}).values())
    return GatewaySim([d.address for d in devices], api_key=api_key, host=parts.hostname or "127.0.0.1", port=port,
                      path_prefix=parts.path, certfile=certfile, keyfile=keyfile, accept_without_key=open_door,
                      **({"heartbeat_s": status_interval} if status_interval else {}), **per_device)


@hookimpl
def register_simulators(register: Callable[[str, Any], None]) -> None:
    register(HttpGatewayAdapter.manifest.name, make_gateway)
