"""Where the tests find the real services and the repository, and how they clean up after
themselves on the shared Redis."""
from __future__ import annotations

from pathlib import Path

from redis import Redis

from hub.testing_fixtures import MQTT_HOST, MQTT_PORT, REDIS_URL  # noqa: F401 - the tests import them from here

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"


def purge_queues(redis: Redis, names: list[str]) -> None:
    """Remove the test's rq queues with their jobs, results and registries."""
    from rq import Queue
    from rq.registry import (DeferredJobRegistry, FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry,
                             StartedJobRegistry)

    for name in names:
        q = Queue(name, connection=redis)
        ids = set(q.job_ids)
        for reg in (StartedJobRegistry, FinishedJobRegistry, FailedJobRegistry, DeferredJobRegistry,
                    ScheduledJobRegistry):
            ids.update(reg(queue=q).get_job_ids())
        for jid in ids:
            redis.delete(f"rq:job:{jid}", f"rq:results:{jid}")
        q.delete(delete_jobs=True)
        for key in redis.scan_iter(f"rq:*:{name}*"):
            redis.delete(key)
