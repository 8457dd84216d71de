"""The per-user person store: records given once can later be named by id."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from phone_core import db
from phone_core.models import PERSON_FIELDS, Person

_CHUNK = 400
_COLS = PERSON_FIELDS[1:]


def upsert(conn: Connection, owner: str, people: Sequence[Person]) -> None:
    """Insert or update the owner's people (the last occurrence of an id wins)."""
    latest: dict[str, Person] = {p.id: p for p in people}
    now = db.utcnow()
    rows = [
        {"owner": owner, "id": p.id, "updated_at": now, **{c: getattr(p, c) for c in _COLS}}
        for p in latest.values()
    ]
    if not rows:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(db.persons)
    stmt = stmt.on_conflict_do_update(
        index_elements=["owner", "id"],
        set_={c: stmt.excluded[c] for c in (*_COLS, "updated_at")},
    )
    for start in range(0, len(rows), _CHUNK * 5):
        conn.execute(stmt, rows[start : start + _CHUNK * 5])


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
