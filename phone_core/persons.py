"""The per-user person store: records given once can later be named by id."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from phone_core import db
from phone_core.models import PERSON_FIELDS, Person

_CHUNK = 400
_COLS = PERSON_FIELDS[1:]
_COLUMNS = ("owner", "id", "updated_at", *_COLS)


def upsert(conn: Connection, owner: str, people: Sequence[Person]) -> None:
    """Insert or update the owner's people (the last occurrence of an id wins). Rows go in
    id order: concurrent upserts of overlapping people lock them in one order (no deadlock)."""
    latest: dict[str, Person] = {p.id: p for p in people}
    now = db.utcnow()
    rows = [(owner, i, now, *(getattr(latest[i], c) for c in _COLS)) for i in sorted(latest)]
    db.bulk_insert(conn, db.persons, _COLUMNS, rows, upsert_on=("owner", "id"))


def fetch(conn: Connection, owner: str, ids: Sequence[str]) -> dict[str, Person]:
    """The owner's people among ``ids`` (others are simply absent)."""
    wanted = sorted(set(ids))
    out: dict[str, Person] = {}
    for start in range(0, len(wanted), _CHUNK):
        part = wanted[start : start + _CHUNK]
        rows = conn.execute(
            sa.select(db.persons).where(db.persons.c.owner == owner, db.persons.c.id.in_(part))
        )
        for r in rows:
            m = r._mapping
            out[m["id"]] = Person(id=m["id"], **{c: m[c] for c in _COLS})
    return out
