"""The same storage and dispatch paths on PostgreSQL, in a throw-away database.
Skipped, with the reason shown, when no server answers (set HUB_TEST_POSTGRES_URL)."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from sqlalchemy import select, text

from hub.access.actors import LOCAL_ADMIN
from hub.delivery.states import expire_due, finish_by_device
from hub.delivery.dispatch import submit
from hub.store.models import Delivery
from hub.plugins import Plugins
from hub.fleet.registry import import_area_file, upsert_device
from hub.runtime import Runtime, set_runtime
from hub.schemas import CommandSchema
from hub.delivery.worker import make_worker
from hub.testing import purge_queues
from tests.support import loopback_vendor
from tests.support.postgres import pg_url  # noqa: F401 - the throw-away PostgreSQL database fixture
from tests.support.services import DATA

pytestmark = pytest.mark.postgres


def test_dispatch_acks_and_expiry_on_postgresql(settings, pg_url) -> None:
    plugins = Plugins()
    plugins.register_module(loopback_vendor, "loopback")
    rt = Runtime(replace(settings, database_url=pg_url), plugins=plugins)
    set_runtime(rt)
    try:
        rt.db.create()
        rt.db.check()
        with rt.db.session() as s:
            import_area_file(s, DATA / "legacy-three-level.yaml")
            for a, area in (("ok-1", "27694"), ("pending-1", "27697"), ("pending-2", "28099-A1")):
                upsert_device(s, plugins, {"id": a, "vendor": "loopback", "kind": "speaker", "area_code": area,
                                           "address": a, "tags": ["x"]})
        sub = submit(rt, LOCAL_ADMIN, CommandSchema().load({"verb": "stop", "target": {"areas": ["80"]}}))
        make_worker(rt).work(burst=True, logging_level="WARNING")
        with rt.db.session() as s:
            assert finish_by_device(s, [(sub.command.id, "pending-1", "acked", None, {"ok": True})]) == 1
            s.execute(text("UPDATE commands SET expires_at = now() - interval '1 second'"))
        with rt.db.session() as s:
            assert expire_due(s) == ["pending-2"]
            got = {d.device_id: d.state for d in s.scalars(select(Delivery))}
        assert got == {"ok-1": "acked", "pending-1": "acked", "pending-2": "expired"}
        assert Counter(got.values()) == {"acked": 2, "expired": 1}
    finally:
        set_runtime(None)
        purge_queues(rt.redis, [rt.queue_name(p) for p in ("emergency", "priority", "normal")])
        rt.close()
