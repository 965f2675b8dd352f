"""Commands driven through the real dispatch and a burst rq worker, to the in-process loopback
vendor (tests/support/loopback_vendor.py), whose device addresses choose its behaviour."""
from __future__ import annotations

from hub.access.actors import LOCAL_ADMIN, Actor
from hub.delivery.dispatch import submit
from hub.delivery.worker import make_worker
from hub.fleet.registry import upsert_device
from hub.schemas import CommandSchema


def add(rt, *addresses: str, area: str = "27694", **extra) -> None:
    """Registers a loopback speaker per address (its id the address in upper case)."""
    with rt.db.session() as s:
        for a in addresses:
            upsert_device(s, rt.plugins, {"id": a.upper(), "vendor": "loopback", "kind": "speaker",
                                          "area_code": area, "address": a, "tags": [], **extra})


def send(rt, raw: dict, actor: Actor = LOCAL_ADMIN):
    return submit(rt, actor, CommandSchema().load(raw))


def work(rt) -> None:
    """Runs every queued job now, in this process."""
    make_worker(rt).work(burst=True, logging_level="WARNING")
