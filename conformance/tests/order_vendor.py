"""An in-process vendor and simulator that record the order they are started in (for
test_vendor_kit_suite.py): a polled plugin's first poll needs its simulator up."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub.hookspecs import hookimpl
from hub.vendor import Manifest, Outcome, Outgoing, Result, VendorAdapter

EVENTS: list[str] = []


class OrderAdapter(VendorAdapter):
    manifest = Manifest(name="order_probe", title="Start order probe", version="0", protocols=("in-process",),
                        device_kinds=("speaker",), capabilities=frozenset({"audio.stop"}))

    def open(self) -> None:
        EVENTS.append("adapter.open")

    def watch(self, devices: Sequence[Any]) -> None:
        """A polling adapter keeps its devices (the guide's sign of a polled plugin)."""
        self.devices = list(devices)

    def send(self, batch: Sequence[Outgoing]) -> list[Result]:
        return [Result(o.device.id, Outcome.ACKED) for o in batch]


class OrderSimulator:
    def __init__(self, *_: Any, **__: Any) -> None:
        pass

    def start(self) -> None:
        EVENTS.append("simulator.start")

    def stop(self) -> None:
        EVENTS.append("simulator.stop")

    def observe(self, address: str) -> dict[str, Any]:
        return {}


@hookimpl
def register_vendors(register):  # noqa: ANN001, ANN201
    register(OrderAdapter)


@hookimpl
def register_simulators(register):  # noqa: ANN001, ANN201
    register("order_probe", OrderSimulator)
