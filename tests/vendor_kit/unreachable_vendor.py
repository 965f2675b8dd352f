"""An in-process vendor whose link is down at first: `open()` raises TransientError, as the guide
tells a plugin to, until `OPEN_FAILURES` attempts have been made."""
from __future__ import annotations

from collections.abc import Sequence

from hub.hookspecs import hookimpl
from hub.vendor import Manifest, Outcome, Outgoing, Result, TransientError, VendorAdapter

OPEN_FAILURES = 2
ATTEMPTS: list[float] = []  # monotonic times of each open() attempt


class UnreachableAdapter(VendorAdapter):
    manifest = Manifest(name="unreachable", title="Gateway down at start-up", version="0",
                        protocols=("in-process",), device_kinds=("speaker",),
                        capabilities=frozenset({"audio.stop"}))

    def open(self) -> None:
        import time

        ATTEMPTS.append(time.monotonic())
        if len(ATTEMPTS) <= OPEN_FAILURES:
            raise TransientError("gateway 127.0.0.1:9 unreachable: [Errno 111] Connection refused")

    def send(self, batch: Sequence[Outgoing]) -> list[Result]:
        return [Result(o.device.id, Outcome.ACKED) for o in batch]


@hookimpl
def register_vendors(register):  # noqa: ANN001, ANN201
    register(UnreachableAdapter)
