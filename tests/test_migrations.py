"""A database made by an earlier hub is upgraded in place, its data kept (SQLite and PostgreSQL)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import inspect, select, text

from hub.cli.main import cli
from hub.config import set_settings
from hub.store.db import SCHEMA_VERSION, Database, SchemaError
from hub.store.migrations import STEPS
from hub.store.models import Command
from hub.runtime import set_runtime
from tests.support.postgres import pg_url  # noqa: F401 - the throw-away PostgreSQL database fixture

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)


def make_version_1(db: Database) -> None:
    """The schema as hub version 1 left it (before scheduling), holding one command."""
    db.create()
    with db.session() as s:
        s.add(Command(id="c-old", verb="set_volume", params={"level": 40}, priority="normal",
                      expires_at=NOW + timedelta(minutes=10), request_hash="0" * 64, issuer="tn-admin",
                      target={"areas": ["80"]}, created_at=NOW, total=3))
    with db.engine.begin() as c:
        c.execute(text("DROP INDEX ix_commands_due"))
        c.execute(text("DROP INDEX ix_devices_area_id"))
        c.execute(text("CREATE INDEX ix_devices_area_code ON devices (area_code)"))
        for col in ("start_at", "released_at", "cancelled_at", "cancelled_by"):
            c.execute(text(f"ALTER TABLE commands DROP COLUMN {col}"))
        c.execute(text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))


@pytest.fixture(params=["sqlite", "postgresql"])
def old_db(request: pytest.FixtureRequest, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}" if request.param == "sqlite" \
        else request.getfixturevalue("pg_url")
    db = Database(url)
    make_version_1(db)
    yield db
    db.dispose()


def test_an_old_database_is_refused_with_the_command_that_upgrades_it(old_db: Database) -> None:
    with pytest.raises(SchemaError, match=r"schema version 1; this hub needs \d+: back it up, then run `hub upgrade-db`"):
        old_db.check()
    with pytest.raises(SchemaError, match="hub upgrade-db"):
        old_db.create()


def test_upgrade_keeps_the_data_and_the_hub_then_starts(old_db: Database) -> None:
    done = old_db.upgrade()
    assert [line.split(":")[0] for line in done] == [str(v) for v in range(2, SCHEMA_VERSION + 1)]
    old_db.check()  # a process would start now
    insp = inspect(old_db.engine)
    assert {"start_at", "released_at", "cancelled_at", "cancelled_by"} <= {c["name"] for c in insp.get_columns("commands")}
    assert "ix_devices_area_id" in {i["name"] for i in insp.get_indexes("devices")}
    assert "ix_devices_area_code" not in {i["name"] for i in insp.get_indexes("devices")}
    with old_db.session() as s:
        old = s.get(Command, "c-old")
        assert old.params == {"level": 40} and old.total == 3 and old.start_at is None
        old.start_at = NOW + timedelta(hours=1)  # the new columns take values
    with old_db.session() as s:
        assert s.execute(select(Command.start_at).where(Command.id == "c-old")).scalar_one() is not None
    assert old_db.upgrade() == []  # a current database is left alone


def test_an_interrupted_upgrade_resumes(old_db: Database) -> None:
    with old_db.engine.begin() as c:  # as if a first attempt died after its first column
        c.execute(text("ALTER TABLE commands ADD COLUMN start_at TIMESTAMP"))
    assert old_db.upgrade()[0].startswith("2:")
    old_db.check()


def test_a_database_from_a_newer_hub_is_refused(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    db.create()
    with db.engine.begin() as c:
        c.execute(text("UPDATE meta SET value = :v WHERE key = 'schema_version'"), {"v": str(SCHEMA_VERSION + 1)})
    with pytest.raises(SchemaError, match="newer than this hub's"):
        db.upgrade()
    with pytest.raises(SchemaError, match="newer than this hub's"):
        db.check()


def test_every_version_has_a_step() -> None:
    assert sorted(STEPS) == list(range(2, SCHEMA_VERSION + 1))


@pytest.fixture
def fresh_runtime():
    yield
    set_runtime(None)
    set_settings(None)


def _upgrade_db(url: str) -> Result:
    set_settings(None)  # each CLI call reads HUB_DATABASE_URL anew
    set_runtime(None)
    # the generated audit key goes next to the database, not into the repository's var/
    state_dir = str(Path(url.removeprefix("sqlite:///")).parent / "var")
    return CliRunner().invoke(cli, ["upgrade-db"], env={"HUB_DATABASE_URL": url, "HUB_STATE_DIR": state_dir})


def test_hub_upgrade_db_says_what_it_did_in_one_line_each(tmp_path: Path, fresh_runtime: None) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    make_version_1(Database(url))
    out = _upgrade_db(url)
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0].startswith("upgraded to 2: scheduled commands")
    again = _upgrade_db(url)
    assert again.exit_code == 0 and "already current" in again.output
    missing = _upgrade_db(f"sqlite:///{tmp_path}/none.sqlite3")
    assert missing.exit_code != 0 and "hub init-db" in missing.output, missing.output


def test_step_5_fills_the_uptime_history_from_the_devices_and_their_events(tmp_path: Path) -> None:
    """Reports count uptime from device_state_log, which outlives its device; a province upgrading
    keeps the history its devices had before (the step's backfill)."""
    from hub.store.models import Area, Device, DeviceEvent
    from hub.store.statistics_tables import DeviceStateLog

    db = Database(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    db.create()
    with db.session() as s:
        s.add(Area(code="80", name="Long An", type="province", level=1, parent_code=None, path="80"))
        s.add(Device(id="d1", name="Loa 1", vendor="mqtt_speaker", kind="speaker", area_code="80", address="a1",
                     created_at=NOW - timedelta(days=3)))
        s.flush()
        s.add(DeviceEvent(device_id="d1", at=NOW - timedelta(days=2), state="online", previous="unknown"))
        s.add(DeviceEvent(device_id="d1", at=NOW - timedelta(days=1), state="offline", previous="online"))
    with db.engine.begin() as c:
        c.execute(text("DROP TABLE device_state_log"))
        c.execute(text("ALTER TABLE deliveries DROP COLUMN area_code"))
        c.execute(text("UPDATE meta SET value = '4' WHERE key = 'schema_version'"))
    assert [line.split(":")[0] for line in db.upgrade()] == ["5"]
    db.check()
    with db.session() as s:
        rows = [(r.state, r.area_code) for r in s.scalars(select(DeviceStateLog).order_by(DeviceStateLog.at))]
    assert rows == [("unknown", "80"), ("online", "80"), ("offline", "80")]
    assert "area_code" in {c["name"] for c in inspect(db.engine).get_columns("deliveries")}
    db.dispose()
