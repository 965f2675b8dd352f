"""Engine, sessions and the schema-version check.

The schema is created with SQLAlchemy's create_all and stamped with SCHEMA_VERSION; a process
refuses to start on a database stamped with another version, rather than corrupt it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from hub.store.models import AUDIT_GENESIS, AuditHead, Base, Meta

# 2: commands.start_at, released_at, cancelled_at, cancelled_by (scheduling)
# 3: commands.issuer_id, account_idempotency_key; audit.actor_id (identity by account id);
#    ingest_quarantine (a new table); deliveries.claimed_at, claimed_by; commands.issuer_scope
#    (delivery state under faults)
SCHEMA_VERSION = 5

log = logging.getLogger(__name__)


class SchemaError(RuntimeError):
    """The database is missing or was made by another version of the hub."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    kwargs = {}
    if url.startswith("sqlite"):
        # API, workers and ingest share one file: wait for locks instead of failing at once.
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
    return engine


class Database:
    def __init__(self, url: str, audit_key: Callable[[], bytes] | None = None) -> None:
        self.url = url
        self.engine = make_engine(url)
        # The audit chain's key (hub.access.audit), read from outside the database; a Runtime sets it.
        self.audit_key = audit_key
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False, info={"hub.store.db": self})

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        s = self.sessionmaker()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def create(self) -> None:
        """Create missing tables and stamp the version (idempotent on a current database)."""
        Base.metadata.create_all(self.engine)
        with self.session() as s:
            row = s.get(Meta, "schema_version")
            if row is None:
                s.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
            elif row.value != str(SCHEMA_VERSION):
                raise SchemaError(self._version_problem(row.value))
            if s.get(AuditHead, 1) is None:  # the row every audit append locks (hub.access.audit)
                s.add(AuditHead(id=1, seq=0, hash=AUDIT_GENESIS))
                s.flush()
                self._start_keyed_chain(s)

    def check(self) -> None:
        try:
            with self.session() as s:
                row = s.execute(select(Meta).where(Meta.key == "schema_version")).scalar_one_or_none()
        except (OperationalError, ProgrammingError) as exc:
            raise SchemaError(f"database {self.safe_url} is not initialised (run `hub init-db`): "
                              f"{exc.orig}") from exc
        if row is None:
            raise SchemaError(f"database {self.safe_url} is not initialised (run `hub init-db`)")
        if row.value != str(SCHEMA_VERSION):
            raise SchemaError(self._version_problem(row.value))

    def _version_problem(self, found: str) -> str:
        if found.isdigit() and int(found) < SCHEMA_VERSION:
            return (f"database {self.safe_url} has schema version {found}; this hub needs {SCHEMA_VERSION}: "
                    "back it up, then run `hub upgrade-db`")
        return (f"database {self.safe_url} has schema version {found}, newer than this hub's {SCHEMA_VERSION}: "
                "run the hub version that made it")

    def upgrade(self) -> list[str]:
        """Bring a database stamped with an older version to SCHEMA_VERSION, one step (and one
        transaction) at a time; returns what each step did. A current database is left alone."""
        from hub.store import migrations

        self.check_initialised()
        with self.session() as s:
            found = s.get(Meta, "schema_version").value  # type: ignore[union-attr]
        if not found.isdigit() or int(found) > SCHEMA_VERSION:
            raise SchemaError(self._version_problem(found))
        done = []
        for version in range(int(found) + 1, SCHEMA_VERSION + 1):
            with self.engine.begin() as conn:
                done.append(migrations.apply(conn, version))
                if version == 3:
                    self._mark_keyed(conn)
                conn.execute(Meta.__table__.update().where(Meta.key == "schema_version").values(value=str(version)))
        Base.metadata.create_all(self.engine)  # tables new since `found`
        for version in range(int(found) + 1, SCHEMA_VERSION + 1):
            fill = migrations.STEPS[version].backfill
            if fill is not None:
                with self.engine.begin() as conn:
                    fill(conn)
        return done

    def _mark_keyed(self, conn: Connection) -> None:
        """Entries appended from now on are keyed; those before stay plain (hub.access.audit). In the
        step's transaction, so that an interrupted upgrade cannot leave the marker out."""
        from hub.store import audit_chain as audit

        if self.audit_key is None:
            log.warning("no audit key: the audit chain of %s is not marked keyed; `hub audit verify` will say so",
                        self.safe_url)
            return
        meta = Meta.__table__
        if conn.execute(select(meta.c.key).where(meta.c.key == audit.KEYED_FROM)).first() is None:
            seq = conn.execute(select(AuditHead.__table__.c.seq).where(AuditHead.__table__.c.id == 1)).scalar() or 0
            value = audit.marker_value(self.audit_key(), seq + 1)
            conn.execute(meta.insert().values(key=audit.KEYED_FROM, value=value))

    def _start_keyed_chain(self, session: Session) -> None:
        from hub.store import audit_chain as audit

        if self.audit_key is None:  # a bare Database (tests of the schema); a Runtime always has a key
            log.warning("no audit key: the audit chain of %s is not marked keyed; `hub audit verify` will say so",
                        self.safe_url)
            return
        audit.start_keyed_chain(session)

    def check_initialised(self) -> None:
        try:
            with self.session() as s:
                row = s.get(Meta, "schema_version")
        except (OperationalError, ProgrammingError) as exc:
            raise SchemaError(f"database {self.safe_url} is not initialised (run `hub init-db`): "
                              f"{exc.orig}") from exc
        if row is None:
            raise SchemaError(f"database {self.safe_url} is not initialised (run `hub init-db`)")

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()
