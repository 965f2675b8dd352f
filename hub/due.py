"""Where `hub.due.send_due` lived before the modules moved into hub/delivery/ (see hub.delivery.job_paths).

rq stores a job's function by import path: jobs an earlier release left in Redis name this one,
and a worker of this release must still run them after an upgrade. Nothing new is enqueued here.
"""
from hub.delivery.due import send_due

__all__ = ["send_due"]
