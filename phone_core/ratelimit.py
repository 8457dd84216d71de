"""A request-rate limit shared by every run and worker process that uses one state DB.

GCRA / token spacing: the ``rate_limits`` row of a resource holds ``next_at``, the earliest
time (epoch seconds, on the database's clock) the next request may go out. ``acquire``
reserves one slot in one short transaction::

    slot    = max(next_at, now)
    next_at = slot + 1 / rate          -- UPDATE ... RETURNING, atomic on the row

and then sleeps until ``slot``. On SQLite the UPDATE takes the database write lock, on
PostgreSQL the row lock, so two processes can never get the same slot. ``penalize``
pushes ``next_at`` forward (a 429 from the vendor slows every caller, not just one).

Time comes from the database (``julianday('now')`` / ``clock_timestamp()``), so workers on
machines with skewed clocks still agree on the slots; each process maps a slot to its own
clock with a running lower bound of the clock difference (see ``reserve_local``).
Without an engine the limiter is process-local (same arithmetic, a lock and local time).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from phone_core import db

_t = db.rate_limits
_SKEW_SAMPLES = 64
_MAX_RESERVES = 3  # late wake-ups: take a fresh slot at most this many times in all
_MIN_TOLERANCE_SEC = 0.005


def db_now(dialect: str) -> sa.ColumnElement[Any]:
    """The current epoch time as a float, evaluated by the database."""
    if dialect == "sqlite":
        return (sa.func.julianday("now") - 2440587.5) * 86400.0
    if dialect == "postgresql":
        return sa.extract("epoch", sa.func.clock_timestamp())
    raise ValueError(f"no database clock for dialect {dialect}")


def ensure_rows(conn: Connection, names: Sequence[str]) -> None:
    """Create the rows of these resources (``next_at`` 0) where missing."""
    db.insert_ignore(conn, _t, [{"name": name, "next_at": 0.0} for name in names])


def debts(conn: Connection, names: Sequence[str]) -> dict[str, float]:
    """``next_at - now`` (seconds ahead of the database clock) for the existing rows."""
    now = db_now(conn.dialect.name)
    rows = conn.execute(sa.select(_t.c.name, _t.c.next_at - now).where(_t.c.name.in_(list(names))))
    return {str(name): float(debt) for name, debt in rows}


def add_debt(conn: Connection, names: Sequence[str], step: float, max_debt: float) -> float:
    """``next_at = min(max(next_at, now) + step, now + max_debt)`` for each row; returns the
    largest resulting debt."""
    now = db_now(conn.dialect.name)
    grown = sa.case((_t.c.next_at > now, _t.c.next_at), else_=now) + step
    cap = now + max_debt
    rows = conn.execute(
        sa.update(_t)
        .where(_t.c.name.in_(list(names)))
        .values(next_at=sa.case((grown > cap, cap), else_=grown))
        .returning(_t.c.next_at - now)
    ).all()
    return max((float(r[0]) for r in rows), default=0.0)


def take(conn: Connection, name: str, step: float, tolerance: float) -> float | None:
    """One request for ``name`` under a GCRA limit: taken when the debt (``next_at - now``)
    is at most ``tolerance``, and then ``next_at = max(next_at, now) + step``, atomically on
    the row (a conditional UPDATE), so processes sharing the state DB never over-admit.
    Returns None when taken; else the seconds until a request would be (nothing counted).
    A limit of ``n`` per ``window``: ``step = window / n``, ``tolerance = window - step``."""
    now = db_now(conn.dialect.name)
    base = sa.case((_t.c.next_at > now, _t.c.next_at), else_=now)
    take_one = (
        sa.update(_t)
        .where(_t.c.name == name, base - now <= tolerance)
        .values(next_at=base + step)
        .returning(_t.c.name)
    )
    # One statement when the row exists (every request but a resource's first).
    if conn.execute(take_one).first() is not None:
        return None
    debt = debts(conn, [name]).get(name)
    if debt is None:  # no row yet: make it, then take as above
        ensure_rows(conn, [name])
        if conn.execute(take_one).first() is not None:
            return None
        debt = debts(conn, [name]).get(name, 0.0)
    return max(0.0, debt - tolerance)


def sweep_drained(conn: Connection, prefix: str) -> int:
    """Delete the rows named ``prefix...`` whose debt has drained; returns how many."""
    now = db_now(conn.dialect.name)
    result = conn.execute(sa.delete(_t).where(_t.c.name.like(f"{prefix}%"), _t.c.next_at < now))
    return int(result.rowcount or 0)


class RequestSpacer:
    """At most ``rate_per_sec`` acquisitions per second for ``name``, across processes."""

    def __init__(self, name: str, rate_per_sec: float, engine: Engine | None = None) -> None:
        if rate_per_sec <= 0:
            raise ValueError("rate_per_sec must be > 0")
        self.name = name
        self.interval = 1.0 / rate_per_sec
        self._engine = engine
        self._lock = threading.Lock()
        self._local_next = 0.0
        self._ready = engine is None
        # lower bounds of (database clock - local clock), one per recent round trip
        self._skews: deque[float] = deque(maxlen=_SKEW_SAMPLES)

    # -- synchronous core (runs in a worker thread) -------------------------------------
    def _ensure_row(self, conn: Connection) -> None:
        if not self._ready:
            ensure_rows(conn, [self.name])

    def _update(self, floor_offset: float, step: float) -> tuple[float, float]:
        """next_at = max(next_at, now + floor_offset) + step; returns (next_at, now)."""
        assert self._engine is not None
        with self._engine.begin() as conn:
            self._ensure_row(conn)
            now = db_now(conn.dialect.name)
            floor = now + floor_offset
            new_next = sa.case((_t.c.next_at > floor, _t.c.next_at), else_=floor) + step
            row = conn.execute(
                sa.update(_t)
                .where(_t.c.name == self.name)
                .values(next_at=new_next)
                .returning(_t.c.next_at, now)
            ).one()
            local_after = time.time()
        self._ready = True
        next_at, clock = float(row[0]), float(row[1])
        with self._lock:  # the statement ran before local_after: a lower bound of the skew
            self._skews.append(clock - local_after)
        return next_at, clock

    def reserve_at(self) -> tuple[float, float]:
        """Take the next slot: (slot start, now), both on the limiter's clock."""
        if self._engine is None:
            with self._lock:
                now = time.time()
                slot = max(self._local_next, now)
                self._local_next = slot + self.interval
            return slot, now
        next_at, now = self._update(0.0, self.interval)
        return next_at - self.interval, now

    def reserve(self) -> float:
        """Take the next slot; returns how many seconds from now it starts (>= 0)."""
        slot, now = self.reserve_at()
        return max(0.0, slot - now)

    def reserve_local(self) -> float:
        """Take the next slot; returns its start on the local clock (``time.time()``).

        The database clock is mapped to the local one with the largest lower bound of
        their difference seen in recent round trips, so the local deadline is never early
        and is late by at most one fast round trip (not by this call's lock wait or thread
        hand-off: a caller that got its answer late simply sleeps less).
        """
        slot, _now = self.reserve_at()
        if self._engine is None:
            return slot
        with self._lock:
            skew = max(self._skews)
        return slot - skew

    def push_back(self, seconds: float) -> None:
        """No slot starts earlier than ``seconds`` from now."""
        if seconds <= 0:
            return
        if self._engine is None:
            with self._lock:
                self._local_next = max(self._local_next, time.time() + seconds)
            return
        self._update(seconds, 0.0)

    # -- async API ------------------------------------------------------------------------
    async def acquire(self) -> float:
        """Wait for this caller's slot; returns the seconds waited.

        A caller that wakes up more than one slot late (a stalled event loop, a busy CPU)
        takes a fresh slot instead of going at once: going late would bunch it with the
        callers of the following slots and break the rate over short windows.
        """
        waited = 0.0
        tolerance = max(self.interval, _MIN_TOLERANCE_SEC)
        for _ in range(_MAX_RESERVES):
            if self._engine is None:
                slot = self.reserve_local()
            else:
                slot = await asyncio.to_thread(self.reserve_local)
            delay = slot - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
                waited += delay
            if time.time() - slot <= tolerance:
                break
        return waited

    async def penalize(self, seconds: float) -> None:
        """Slow every caller down: nobody gets a slot in the next ``seconds``."""
        if self._engine is None:
            self.push_back(seconds)
        else:
            await asyncio.to_thread(self.push_back, seconds)
