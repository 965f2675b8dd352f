"""Defence in depth behind finding 1: rq jobs are JSON, so a job written into Redis by anyone
who reaches it (or left pickled by an older hub) is never unpickled by a worker, which holds the
MQTT login that reaches every speaker. Against the real Redis."""
from __future__ import annotations

import logging
import pickle
import uuid
from pathlib import Path

import pytest
from rq import Queue
from rq.registry import FailedJobRegistry

from hub.runtime import Runtime
from hub.delivery.worker import make_worker


class _TouchOnUnpickle:
    """Unpickling this calls Path.touch(marker): what a planted job would do with os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path(str(self.marker)).touch, ())


def test_a_pickled_job_is_never_unpickled_and_fails_visibly(rt: Runtime, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "code-ran"
    queue_name = rt.queue_name("emergency")
    # What an older hub (pickle, rq's default) or an intruder in Redis leaves in the queue
    pickling = Queue(queue_name, connection=rt.redis)
    job = pickling.enqueue("hub.delivery.jobs.send_batch", _TouchOnUnpickle(marker), "loopback", [1],
                           job_id=f"hub-{uuid.uuid4().hex}-planted")
    assert marker.exists() is False and pickle.loads(pickle.dumps(1)) == 1
    caplog.set_level(logging.ERROR)
    make_worker(rt, threaded=True).work(burst=True, logging_level="WARNING")
    assert not marker.exists(), "the worker unpickled a job from Redis"
    assert job.id in FailedJobRegistry(queue=rt.queue("emergency")).get_job_ids()
    assert any(job.id in r.getMessage() and "not JSON" in r.getMessage() for r in caplog.records), caplog.text


def test_hub_jobs_are_json_in_redis(rt: Runtime) -> None:
    from hub.delivery.dispatch import JOB_PREFIX

    q = rt.queue("normal")
    q.enqueue("hub.delivery.jobs.send_batch", "c1", "loopback", [1, 2], job_id=f"{JOB_PREFIX}c1-{uuid.uuid4().hex[:6]}")
    raw = rt.redis.hget(f"rq:job:{q.job_ids[0]}", "data")
    import json
    import zlib

    assert json.loads(zlib.decompress(raw)) == ["hub.delivery.jobs.send_batch", None, ["c1", "loopback", [1, 2]], {}]
