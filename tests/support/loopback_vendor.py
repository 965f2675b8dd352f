"""A vendor adapter that lives in the test process: each device's behaviour is set by its
address, so dispatch, retries and failure paths can be driven without a network protocol."""
from __future__ import annotations

from collections.abc import Sequence

from hub.hookspecs import hookimpl
from hub.vendor import Manifest, Outcome, Outgoing, Result, TransientError, VendorAdapter

CALLS: list[list[str]] = []  # addresses per send() call, for assertions


class LoopbackAdapter(VendorAdapter):
    """Addresses: `ok-*` ack at once, `pending-*` wait for an ack, `flaky-*` fail transiently
    on the first attempt, `down-*` always fail transiently, `refuse-*` fail for good,
    `crash-*` raise from send, `link-*` raise TransientError for the whole batch."""

    manifest = Manifest(name="loopback", title="Loopback test vendor", version="0", protocols=("in-process",),
                        device_kinds=("speaker", "led_board"),
                        capabilities=frozenset({"audio.play_url", "audio.stop", "audio.volume", "led.text"}))
    attempts: dict[str, int] = {}

    def send(self, batch: Sequence[Outgoing]) -> list[Result]:
        CALLS.append([o.device.address for o in batch])
        out = []
        for o in batch:
            a = o.device.address
            n = LoopbackAdapter.attempts[a] = LoopbackAdapter.attempts.get(a, 0) + 1
            if a.startswith("crash"):
                raise RuntimeError("vendor library blew up")
            if a.startswith("link"):
                raise TransientError("gateway unreachable")
            if a.startswith("ok") or (a.startswith("flaky") and n > 1):
                out.append(Result(o.device.id, Outcome.ACKED, detail={"volume": o.envelope.params.get("level")}))
            elif a.startswith("pending"):
                out.append(Result(o.device.id, Outcome.PENDING))
            elif a.startswith(("flaky", "down")):
                out.append(Result(o.device.id, Outcome.FAILED, reason="HTTP 503 from gateway", transient=True))
            else:
                out.append(Result(o.device.id, Outcome.FAILED, reason="device rejected the command"))
        return out


@hookimpl
def register_vendors(register):  # noqa: ANN001, ANN201
    register(LoopbackAdapter)
