"""The per-user person store: records given once can later be named by id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

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


def delete(conn: Connection, pairs: Sequence[tuple[str, str]]) -> int:
    """Remove these (owner, id) people; how many there were (erasure)."""
    p = db.persons
    gone = 0
    for owner in sorted({o for o, _ in pairs}):
        ids = sorted({i for o, i in pairs if o == owner})
        for start in range(0, len(ids), _CHUNK):
            part = ids[start : start + _CHUNK]
            gone += conn.execute(sa.delete(p).where(p.c.owner == owner, p.c.id.in_(part))).rowcount
    return gone


def matching(
    conn: Connection, emails: Sequence[str], linkedins: Sequence[str]
) -> list[tuple[str, str]]:
    """(owner, id) of every user's people with one of these (normalised) emails or
    LinkedIn slugs."""
    p = db.persons
    conds = []
    if emails:
        conds.append(p.c.email.in_(sorted(set(emails))))
    if linkedins:
        conds.append(p.c.linkedin.in_(sorted(set(linkedins))))
    if not conds:
        return []
    rows = conn.execute(sa.select(p.c.owner, p.c.id).where(sa.or_(*conds)))
    return [(str(o), str(i)) for o, i in rows]


def delete_older(conn: Connection, before: datetime) -> int:
    """Remove people not given again since ``before`` (retention); how many."""
    p = db.persons
    return int(conn.execute(sa.delete(p).where(p.c.updated_at < before)).rowcount or 0)
