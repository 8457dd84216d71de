"""Two workers that find the same person in the same moment both remember it: the second
write must update the entry, not fail its wave (PostgreSQL, READ COMMITTED: a
delete-then-insert from each side raced on the primary key and failed the run; seen in
tests/core/test_postgres_scaleout.py on CI).

Needs PHONE_TEST_POSTGRES_URL; the test makes and drops its own database.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from phone_core import db
from phone_core.sources.cache import cached_phones, remember
from tests.api.backends import PG_URL, pg_database

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="PHONE_TEST_POSTGRES_URL is not set"),
]


def test_two_transactions_remembering_one_person_both_commit() -> None:
    with pg_database() as url:
        engine = db.make_engine(url)
        try:
            db.migrate(engine)
            first_wrote = threading.Event()
            second_started = threading.Event()

            def first() -> None:
                with engine.begin() as conn:
                    remember(conn, {"li:ann": ("+14155550101", "lantern"), "li:bob": ("+1", "x")})
                    first_wrote.set()
                    # hold the transaction open until the second one waits on the same key
                    assert second_started.wait(10)
                    waiting = sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")
                    for _ in range(200):  # at most ~10 s
                        if conn.execute(waiting).scalar():
                            break
                        time.sleep(0.05)
                    else:
                        raise AssertionError("the second writer never waited on the key")

            def second() -> None:
                assert first_wrote.wait(10)
                with engine.begin() as conn:
                    second_started.set()
                    remember(conn, {"li:ann": ("+14155550102", "prospeo")})

            with ThreadPoolExecutor(2) as pool:
                done = [pool.submit(first), pool.submit(second)]
                for f in done:
                    f.result(timeout=30)  # the second raised IntegrityError before the fix
            with engine.connect() as conn:
                got = cached_phones(conn, ["li:ann", "li:bob"], ttl_days=30)
                source = conn.execute(
                    sa.select(db.cache.c.source).where(db.cache.c.identity == "li:ann")
                ).scalar_one()
            assert got == {"li:ann": "+14155550102", "li:bob": "+1"}  # the later write wins
            assert source == "prospeo"
        finally:
            engine.dispose()
