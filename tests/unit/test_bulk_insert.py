"""db.bulk_insert (the DBAPI fast path of submits) stores what SQLAlchemy would: people
upserted by (owner, id) with their timestamps readable, on SQLite here (PostgreSQL in
tests/core/test_postgres_scaleout.py)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from phone_core import db, persons
from phone_core.models import Person


def check_person_upsert(engine: Engine) -> None:
    db.migrate(engine)
    first = [Person(id="a", first_name="Zoë", company_url="acme.com"), Person(id="b")]
    with engine.begin() as conn:
        persons.upsert(conn, "ann", first)
        persons.upsert(conn, "bob", [Person(id="a", last_name="Other owner")])
    with engine.begin() as conn:  # the last occurrence of an id wins; others stay
        persons.upsert(
            conn, "ann", [Person(id="a", first_name="Zoe"), Person(id="a", email="z@x.io")]
        )
    with engine.connect() as conn:
        got = persons.fetch(conn, "ann", ["a", "b", "c"])
        stamps = conn.execute(sa.select(db.persons.c.updated_at)).scalars().all()
        assert persons.fetch(conn, "bob", ["a"])["a"].last_name == "Other owner"
    assert got == {"a": Person(id="a", email="z@x.io"), "b": Person(id="b")}
    assert len(stamps) == 3 and all(s.year >= 2026 for s in stamps)


def test_person_upsert_on_sqlite(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    try:
        check_person_upsert(engine)
    finally:
        engine.dispose()
