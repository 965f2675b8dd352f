"""The hooks: the adapter, the simulator, and how the suite runs the simulator."""
from __future__ import annotations

import hashlib
from typing import Any

from hub.hookspecs import hookimpl

from hub_batch_gateway.adapter import VENDOR, BatchGatewayAdapter
from hub_batch_gateway.simulator import OWN_FAULTS, Gateway
from hub.ports import free_port as _free_port


@hookimpl
def register_vendors(register):  # noqa: ANN001, ANN201
    register(BatchGatewayAdapter)


@hookimpl
def register_simulators(register):  # noqa: ANN001, ANN201
    register(VENDOR, Gateway)




def _imei(run_id: str, n: int) -> str:
    # The gateway assigns 15-digit ids; each run has its own gateway (port), so ids need not carry
    # the run id, but distinct runs still get distinct ones.
    digits = str(int(hashlib.sha256(f"{run_id}-{n}".encode()).hexdigest(), 16))
    return "86" + digits[:13]


@hookimpl
def conformance_setup(vendor: str, run_id: str, parameters: dict[str, float]) -> dict[str, Any] | None:
    if vendor != VENDOR:
        return None
    return {"config": {"url": f"http://127.0.0.1:{_free_port()}",
                       "poll_interval_s": parameters["heartbeat_interval_s"] / 2, "timeout_s": 2.0},
            "devices": [{"address": _imei(run_id, 1), "kind": "speaker"}],
            # what the simulator plays: a short clip long enough to send two more plays while it plays
            "media": {"audio_url": "http://127.0.0.1:9/batch/long.mp3", "audio_duration_s": 30,
                      "short_audio_url": "http://127.0.0.1:9/batch/short.mp3", "short_audio_duration_s": 8},
            "fault_modes": OWN_FAULTS}
