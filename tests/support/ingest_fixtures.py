"""A database with devices and a sent command, on SQLite or a throw-away PostgreSQL database, for
tests of the ingest's writer and sweeper. PostgreSQL cases skip, with the reason shown, when no
server answers (HUB_TEST_POSTGRES_URL, or postgres@127.0.0.1:5432)."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hub.config import Settings
from hub.store.db import Database, utcnow
from hub.store.models import Command, Delivery
from hub.plugins import Plugins
from hub.fleet.registry import import_area_file, upsert_device
from hub.runtime import Runtime
from tests.support.postgres import postgres_database, postgres_url  # noqa: F401 - a fixture, imported from here too
from tests.support.services import DATA

COMMUNE = "27694"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    else:
        yield from postgres_database()


def runtime_with_devices(url: str, n: int, prefix: str = "DEV", **settings: object) -> tuple[Runtime, list[str]]:
    """A Runtime (no Redis) on `url` with `n` mqtt_speaker-less loopback devices registered;
    returns it and the device ids (their addresses are the ids in lower case)."""
    plugins = Plugins()
    plugins.load_entry_points()
    from tests.support import loopback_vendor

    plugins.register_module(loopback_vendor, "loopback")
    rt = Runtime(Settings(database_url=url, **settings), db=Database(url), plugins=plugins)  # type: ignore[arg-type]
    rt.db.create()
    ids = [f"{prefix}-{i:05d}" for i in range(n)]
    with rt.db.session() as s:
        import_area_file(s, DATA / "legacy-three-level.yaml")
        for did in ids:
            upsert_device(s, rt.plugins, {"id": did, "vendor": "loopback", "kind": "speaker", "area_code": COMMUNE,
                                          "address": did.lower(), "tags": []})
    return rt, ids


def sent_command(rt: Runtime, device_ids: list[str], expires_at: datetime | None = None) -> str:
    """A command whose deliveries to `device_ids` are all `sent`, awaiting acks."""
    cid = uuid.uuid4().hex
    now = utcnow()
    with rt.db.session() as s:
        s.add(Command(id=cid, verb="stop", params={}, priority="normal", issuer="test", request_hash="0" * 64,
                      expires_at=expires_at or now + timedelta(minutes=10), target={"devices": device_ids},
                      created_at=now, total=len(device_ids)))
        s.flush()
        s.connection().execute(Delivery.__table__.insert(), [
            {"command_id": cid, "device_id": did, "vendor": "loopback", "state": "sent", "attempts": 1,
             "queued_at": now, "sent_at": now} for did in device_ids])
    return cid
