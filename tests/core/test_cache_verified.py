"""The cache keeps line type and verified_at; entries verified longer ago than the TTL are
looked up again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from phone_core import db
from phone_core.sources.cache import cached_phones, remember


def test_ttl_counts_from_verified_at(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    db.migrate(engine)
    now = db.utcnow()
    with engine.begin() as conn:
        remember(
            conn,
            {"fresh": ("+12125550101", "lusha"), "stale": ("+12125550102", "prospeo")},
            {
                "fresh": ("direct", now - timedelta(days=2)),
                "stale": ("mobile", now - timedelta(days=40)),
            },
        )
        remember(conn, {"plain": ("+12125550103", "lantern")})
    with engine.connect() as conn:
        assert cached_phones(conn, ["fresh", "stale", "plain"], ttl_days=30) == {
            "fresh": "+12125550101",
            "plain": "+12125550103",
        }
        assert cached_phones(conn, ["fresh"], ttl_days=1) == {}
        rows = dict(conn.execute(sa.select(db.cache.c.identity, db.cache.c.line_type)).all())
        verified = dict(conn.execute(sa.select(db.cache.c.identity, db.cache.c.verified_at)).all())
    assert rows == {"fresh": "direct", "stale": "mobile", "plain": ""}
    assert verified["plain"] is not None  # defaults to when it was found
    engine.dispose()


def test_a_legacy_row_without_verified_at_counts_from_created_at(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    db.migrate(engine)
    old = db.utcnow() - timedelta(days=40)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(db.cache).values(
                identity="x", phone="+12125550101", source="lantern", created_at=old
            )
        )
    with engine.connect() as conn:
        assert cached_phones(conn, ["x"], ttl_days=30) == {}
        assert cached_phones(conn, ["x"], ttl_days=60) == {"x": "+12125550101"}
    engine.dispose()
