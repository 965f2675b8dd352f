"""An upgrade while jobs wait in Redis: rq names each job's function by import path, and the
previous release stored `hub.jobs.send_batch`, `hub.due.send_due` and `hub.redeliver.resend`.
After the modules moved into hub/delivery/, those jobs must still run, and the sweeper must
still see the rows they hold (hub/delivery/job_paths.py)."""
from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest
from rq import Queue

from hub.delivery.recovery import requeue_orphans
from hub.runtime import JOB_SERIALIZER
from hub.store.db import utcnow
from hub.testing import HubHarness

hub_mqtt_speaker = pytest.importorskip("hub_mqtt_speaker")
from hub_mqtt_speaker.device import SimDevice  # noqa: E402
from hub_mqtt_speaker.simulator import Fleet  # noqa: E402

MQTT_HOST = os.environ.get("HUB_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("HUB_TEST_MQTT_PORT", "1883"))


def _as_previous_release(queue: Queue) -> list[str]:
    """Replace every waiting job by the one the previous release enqueued: same arguments,
    function named by its old import path."""
    old_ids = []
    for job in queue.get_jobs():
        assert job.func_name == "hub.delivery.jobs.send_batch"  # what this release enqueues
        args = job.args
        job.delete()
        old = queue.enqueue("hub.jobs.send_batch", *args, job_id=f"hub-{args[0]}-{uuid.uuid4().hex[:12]}")
        old_ids.append(old.id)
    return old_ids


def test_a_job_the_previous_release_enqueued_is_run_by_this_worker(tmp_path, mqtt_prefix, services) -> None:
    config = {"host": MQTT_HOST, "port": MQTT_PORT, "topic_prefix": mqtt_prefix}
    with HubHarness(tmp_path, "mqtt_speaker", config) as hub, \
            Fleet(MQTT_HOST, MQTT_PORT, mqtt_prefix, [SimDevice("a1"), SimDevice("a2")], status_interval=5):
        hub.add_device("A1", "a1")
        hub.add_device("A2", "a2")
        sub = hub.send("set_volume", ["A1", "A2"], {"level": 40}, run_worker=False)
        queue = hub.rt.queue(sub.command.priority)
        old_ids = _as_previous_release(queue)
        assert old_ids and [j.func_name for j in queue.get_jobs()] == ["hub.jobs.send_batch"] * len(old_ids)

        hub.work()  # a real rq worker of this release, as `hub worker` builds it

        got = hub.wait(sub.command.id)
        assert {d: o.state for d, o in got.items()} == {"A1": "acked", "A2": "acked"}
        assert all(Queue(queue.name, connection=hub.rt.redis, serializer=JOB_SERIALIZER)
                   .fetch_job(i).is_finished for i in old_ids)


def test_the_sweeper_sees_the_rows_an_old_path_job_holds(tmp_path, mqtt_prefix, services) -> None:
    """Not an orphan: enqueueing those rows again would send every device the command twice."""
    config = {"host": MQTT_HOST, "port": MQTT_PORT, "topic_prefix": mqtt_prefix}
    with HubHarness(tmp_path, "mqtt_speaker", config, default_ttl_s=3600) as hub:  # alive when swept
        hub.add_device("A1", "a1")
        sub = hub.send("set_volume", ["A1"], {"level": 40}, run_worker=False)
        queue = hub.rt.queue(sub.command.priority)
        _as_previous_release(queue)
        later = utcnow() + timedelta(seconds=hub.rt.settings.requeue_after_s + 60)
        assert requeue_orphans(hub.rt, now=later) == 0
        assert len(queue.get_jobs()) == 1
        # and a row no job holds is still found: the check above is not blind
        for job in queue.get_jobs():
            job.delete()
        assert requeue_orphans(hub.rt, now=later) == 1


@pytest.mark.parametrize("old, new", [("hub.jobs.send_batch", "hub.delivery.jobs.send_batch"),
                                      ("hub.due.send_due", "hub.delivery.due.send_due"),
                                      ("hub.redeliver.resend", "hub.delivery.redeliver.resend")])
def test_every_old_job_path_still_imports_the_function_that_runs_now(old: str, new: str) -> None:
    from rq.utils import import_attribute

    assert import_attribute(old) is import_attribute(new)
