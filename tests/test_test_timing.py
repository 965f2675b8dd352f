"""The suite's own timing tools (hub.testing): one setting stretches every test deadline, and
the job workers of a test take a job the moment it is queued, as `hub worker` does."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from hub.access.actors import LOCAL_ADMIN
from hub.delivery.dispatch import submit
from hub.fleet.registry import upsert_device
from hub.runtime import Runtime
from hub.schemas import CommandSchema
from hub.store.models import Delivery
from hub.testing import TIME_SCALE_ENV, WorkerThreads, scaled, time_scale, wait_until


def test_one_setting_stretches_the_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    from hub_conformance.params import PARAMETERS
    from hub_conformance.proof import FAST_PARAMS, fast_params

    monkeypatch.delenv(TIME_SCALE_ENV, raising=False)
    assert time_scale() == 1.0 and scaled(1.5) == 1.5 and fast_params() == FAST_PARAMS
    monkeypatch.setenv(TIME_SCALE_ENV, "2")
    assert scaled(1.5) == 3.0
    assert fast_params() == {k: 2 * v for k, v in FAST_PARAMS.items()}
    assert fast_params(heartbeat_interval_s=1.0)["heartbeat_interval_s"] == 2.0
    # what a device is certified against does not move
    assert PARAMETERS["status_timeout_s"].default(simulator=False) == 30.0


@pytest.mark.parametrize("raw", ["fast", "0.5", "100"])
def test_a_bad_time_scale_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(TIME_SCALE_ENV, raw)
    with pytest.raises(ValueError, match=f"{TIME_SCALE_ENV}={raw!r}"):
        time_scale()


def test_test_workers_take_a_job_queued_while_they_idle(hub: Runtime) -> None:
    with hub.db.session() as s:
        upsert_device(s, hub.plugins, {"id": "OK-1", "vendor": "loopback", "kind": "speaker",
                                       "area_code": "27694", "address": "ok-1", "tags": []})
    with WorkerThreads(hub, 2):
        time.sleep(2.5)  # longer than a worker's blocking wait on the queues: they have idled
        t0 = time.monotonic()
        sub = submit(hub, LOCAL_ADMIN, CommandSchema().load({"verb": "stop", "target": {"devices": ["OK-1"]}}))

        assert wait_until(lambda: _state(hub, sub.command.id) == "acked", 10)
        assert time.monotonic() - t0 < scaled(2.0)  # taken at once, not at the next round of some loop


def _state(rt: Runtime, command_id: str) -> str | None:
    with rt.db.session() as s:
        return s.scalars(select(Delivery.state).where(Delivery.command_id == command_id)).first()
