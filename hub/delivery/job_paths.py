"""The import paths rq stores with each job, and the ones earlier releases stored.

rq names a job's function by its import path in Redis. A hub upgraded while jobs wait in the
queue finds them under the old paths (`hub.jobs.send_batch` before the modules moved into
hub/delivery/): the top-level alias modules keep those importable, and the sweeper reads
both, so that no waiting job is lost or counted as an orphan by an upgrade.
"""
from __future__ import annotations

SEND_BATCH = "hub.delivery.jobs.send_batch"  # one adapter batch of one command
SEND_DUE = "hub.delivery.due.send_due"  # every command of one vendor and class due in a release window
RESEND = "hub.delivery.redeliver.resend"  # again, to a device that came back

# path stored by an earlier release -> the function that runs it now
EARLIER = {
    "hub.jobs.send_batch": SEND_BATCH,
    "hub.due.send_due": SEND_DUE,
    "hub.redeliver.resend": RESEND,
}


def current(func_name: str | None) -> str | None:
    """The path a job's function has now, whichever release enqueued it."""
    return EARLIER.get(func_name or "", func_name)
