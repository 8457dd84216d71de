"""One API install per state-DB kind: SQLite, and PostgreSQL when PHONE_TEST_POSTGRES_URL is set.

Import ``backend_rt`` into a test module to run its tests on both. The PostgreSQL install
gets a database of its own (dropped afterwards); DBOS stays on a SQLite file, since these
installs have no worker (submitted runs stay queued) and only the state DB is under test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from phone_core import bootstrap
from phone_core.runtime import Runtime
from tests.conftest import make_settings

PG_URL = os.environ.get("PHONE_TEST_POSTGRES_URL", "")
NO_PG = "PHONE_TEST_POSTGRES_URL is not set (CI sets it; no PostgreSQL here)"


def _pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database's URL, dropped when the generator is closed or
    exhausted (``pg_database`` is the same as a context manager)."""
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"phone_t_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


pg_database = contextmanager(_pg_database)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend_rt(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runtime]:
    """A worker-less install (no request-rate limit in the way) on each kind of state DB."""
    base = tmp_path_factory.mktemp(f"api-{request.param}")
    overrides: dict[str, Any] = {
        "api_rate_per_minute": 1_000_000,
        "api_auth_max_failures": 1_000_000,  # tests of the lockout build apps of their own
    }
    databases: Iterator[str] | None = None
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip(NO_PG)
        databases = _pg_database()
        overrides["database_url"] = next(databases)
        overrides["dbos_database_url"] = f"sqlite:///{base / 'dbos.sqlite'}"
    bootstrap.shutdown()
    try:
        yield bootstrap.get_runtime(make_settings(base / "data", **overrides), worker=False)
    finally:
        bootstrap.shutdown()
        if databases is not None:
            next(databases, None)
