"""db.bulk_insert's PostgreSQL paths (COPY for plain inserts, COPY into a temporary table
for upserts of many rows) store exactly what the statement-per-row form stores: awkward
text (tabs, newlines, backslashes, quotes, accents), NULLs, booleans, JSON, timestamps,
and for an upsert the last row of a key given twice.

Needs PHONE_TEST_POSTGRES_URL (as tests/core/test_postgres_scaleout.py); each test makes
and drops its own database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from phone_core import db, persons, run_views, runs
from phone_core.models import Person
from tests.api.backends import PG_URL, pg_database

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="PHONE_TEST_POSTGRES_URL is not set"),
]
AWKWARD = 'tab\there, line\nbreak, back\\slash, "quoted", Zoë; €'


@pytest.fixture
def engine() -> Iterator[sa.engine.Engine]:
    with pg_database() as url:
        eng = db.make_engine(url)
        db.migrate(eng)
        yield eng
        eng.dispose()


def test_many_people_upserted_through_a_temporary_table(engine: sa.engine.Engine) -> None:
    many = db.COPY_UPSERT_MIN_ROWS + 50
    first = [Person(id=f"p{i:04d}", first_name=f"Old{i}") for i in range(many)]
    with engine.begin() as conn:
        persons.upsert(conn, "ann", first)
        persons.upsert(conn, "bob", [Person(id="p0001", last_name="Bob's own")])
    again = [Person(id=f"p{i:04d}", first_name=f"New{i}", last_name=AWKWARD) for i in range(many)]
    again.append(Person(id="p0000", email="last@wins.io"))  # a key twice: the last wins
    with engine.begin() as conn:
        persons.upsert(conn, "ann", again)
    with engine.connect() as conn:
        got = persons.fetch(conn, "ann", [p.id for p in first])
        bob = persons.fetch(conn, "bob", ["p0001"])
        temp = conn.execute(
            sa.text("SELECT count(*) FROM pg_tables WHERE tablename LIKE '_bulk_%'")
        ).scalar_one()
    assert len(got) == many and temp == 0
    assert got["p0000"] == Person(id="p0000", email="last@wins.io")
    assert got["p0001"] == Person(id="p0001", first_name="New1", last_name=AWKWARD)
    assert bob["p0001"].last_name == "Bob's own"


def test_records_copied_round_trip(engine: sa.engine.Engine) -> None:
    people = [Person(id=f"r{i}", first_name=AWKWARD, linkedin=f"in-{i}") for i in range(300)]
    source = [{"Name": AWKWARD, "Empty": "", "N": str(i)} for i in range(300)]
    with engine.begin() as conn:
        new = runs.NewRun(
            run_id="run1", owner="ann", max_credits=1, total=300, worst_case=1,
            result_path="s3://b/run1/results.csv", credits_path="s3://b/run1/credits.csv",
        )  # fmt: skip
        runs.create(conn, new)
        dup_of: list[int | None] = [None, 0] * 150
        runs.insert_records(
            conn, "run1", people, ["li:x"] * 300, dup_of, [i % 3 != 0 for i in range(300)], source
        )
    with engine.connect() as conn:
        got = run_views.outcomes(conn, "run1")
        flags = conn.execute(
            sa.select(db.run_records.c.known, db.run_records.c.dup_of).order_by(
                db.run_records.c.idx
            )
        ).all()
    assert [o.person for o in got] == people
    assert [o.source_row for o in got] == source
    assert [tuple(f) for f in flags] == [(i % 3 != 0, dup_of[i]) for i in range(300)]
