"""Earlier outcomes by identity, free, valid for ``ttl_days``.

Scope (``PHONE_CACHE_SCOPE``): ``organisation`` (the default) shares found phones between
all users of the install, so nobody pays twice for one person; ``user`` keeps each
user's phones to that user (the cache key then hashes the owner in, so one user's
pre-flight cannot reveal what another looked up). ``cache_key`` is the one rule.

Only found phones are cached: a not-found identity is looked up again next time (with
the default prices that costs nothing, and the directory or vendor may know it by then).
An entry keeps the phone's line type and ``verified_at`` (when the vendor verified it,
else when we found it); it is fresh for ``ttl_days`` from ``verified_at`` (from
``created_at`` for entries written before it existed), older ones are looked up again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from phone_core import db
from phone_core.credits import Price
from phone_core.models import RecordStatus, SourceResult
from phone_core.sources.base import Lookup

NAME = "cache"
_CHUNK = 500
_COLUMNS = ("identity", "phone", "source", "created_at", "line_type", "verified_at")
ORGANISATION = "organisation"
USER = "user"


def cache_key(identity: str, owner: str, scope: str) -> str:
    """The cache row's key for a person's identity, seen from ``owner``."""
    if scope == ORGANISATION or not identity:
        return identity
    digest = hashlib.sha256(f"{owner}\x1f{identity}".encode()).hexdigest()
    return f"u:{digest}"


def cached_phones(conn: Connection, identities: Sequence[str], ttl_days: int) -> dict[str, str]:
    """identity -> E.164 phone, for identities with a fresh cached phone."""
    wanted = sorted({i for i in identities if i})
    if not wanted or ttl_days <= 0:
        return {}
    since = db.utcnow() - timedelta(days=ttl_days)
    out: dict[str, str] = {}
    checked = sa.func.coalesce(db.cache.c.verified_at, db.cache.c.created_at)
    for start in range(0, len(wanted), _CHUNK):
        part = wanted[start : start + _CHUNK]
        rows = conn.execute(
            sa.select(db.cache.c.identity, db.cache.c.phone).where(
                db.cache.c.identity.in_(part), checked >= since
            )
        )
        out.update({ident: phone for ident, phone in rows})
    return out


def remember(
    conn: Connection,
    found: dict[str, tuple[str, str]],
    meta: Mapping[str, tuple[str, datetime | None]] | None = None,
) -> None:
    """Store identity -> (phone, source), replacing older entries; ``meta``: identity ->
    (line type, verified_at) where the source said (verified_at defaults to now).

    One upsert in identity order: two workers that find one person at the same moment both
    commit (the later write wins), where a delete-then-insert raced on the key and failed
    the second worker's wave."""
    if not found:
        return
    now = db.utcnow()
    meta = meta or {}
    rows = []
    for ident in sorted(found):
        phone, source = found[ident]
        line_type, verified_at = meta.get(ident, ("", None))
        verified = min(verified_at, now) if verified_at else now
        rows.append((ident, phone, source, now, line_type[:20], verified))
    db.bulk_insert(conn, db.cache, _COLUMNS, rows, upsert_on=("identity",))


def forget(conn: Connection, keys: Sequence[str], phones: Sequence[str]) -> int:
    """Remove the cached phones of these cache keys, and any entry holding one of these
    phones (erasure); how many entries."""
    c = db.cache
    gone = 0
    for column, values in ((c.c.identity, keys), (c.c.phone, phones)):
        wanted = sorted({v for v in values if v})
        for start in range(0, len(wanted), _CHUNK):
            part = wanted[start : start + _CHUNK]
            gone += int(conn.execute(sa.delete(c).where(column.in_(part))).rowcount or 0)
    return gone


def purge_older(conn: Connection, ttl_days: int, now: datetime) -> int:
    """Remove entries older than the cache's time to live (no longer served; retention)."""
    if ttl_days <= 0:
        return 0
    before = now - timedelta(days=ttl_days)
    return int(
        conn.execute(sa.delete(db.cache).where(db.cache.c.created_at < before)).rowcount or 0
    )


class CacheSource:
    """The cache seen as a source: always first in the waterfall, never charges."""

    name = NAME

    def __init__(self, engine: Engine, ttl_days: int) -> None:
        self._engine = engine
        self._ttl_days = ttl_days
        self.price = Price(NAME, lookup_cost=0, found_cost=0)

    async def lookup_many(self, lookups: Sequence[Lookup]) -> list[SourceResult]:
        return await asyncio.to_thread(self._lookup_sync, lookups)

    def close(self) -> None:
        return None

    def _lookup_sync(self, lookups: Sequence[Lookup]) -> list[SourceResult]:
        with self._engine.connect() as conn:
            hits = cached_phones(conn, [lk.identity for lk in lookups], self._ttl_days)
        return [
            SourceResult(source=NAME, phone=hits[lk.identity], status=RecordStatus.CACHED)
            if lk.identity in hits
            else SourceResult(source=NAME, status=RecordStatus.NOT_FOUND)
            for lk in lookups
        ]
