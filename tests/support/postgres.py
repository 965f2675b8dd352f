"""A throw-away PostgreSQL database per test, made on the server the tests are pointed at
(HUB_TEST_POSTGRES_URL, or postgres@127.0.0.1:5432) and dropped after; the test skips, with the
reason shown, when no server answers. Test modules import the fixture they use."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def postgres_database() -> Iterator[str]:
    """Yields the URL of a new, empty database; drops it when resumed."""
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with admin.connect() as c:
            c.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means: no server to test against
        pytest.skip(f"no PostgreSQL at {make_url(PG_ADMIN_URL).render_as_string(hide_password=True)}: "
                    f"{type(exc).__name__}")
    name = f"hubtest_{uuid.uuid4().hex[:12]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_database()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The same as postgres_url, under the name the storage and audit tests use."""
    yield from postgres_database()
