"""Where `hub.jobs.send_batch` lived before the modules moved into hub/delivery/ (see hub.delivery.job_paths).

rq stores a job's function by import path: jobs an earlier release left in Redis name this one,
and a worker of this release must still run them after an upgrade. Nothing new is enqueued here.
"""
from hub.delivery.jobs import send_batch

__all__ = ["send_batch"]
