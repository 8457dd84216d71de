"""Credits: pure cost functions, and the account/hold/ledger operations on the state DB.

Money model (integers only):
- balance   = grants - charges (the append-only ledger)
- held      = for each queued/running run of the user: max_credits - spent so far
- available = balance - held, further capped by the monthly limit when one is set
A run's hold is taken at submit (in the same transaction that creates the run) and is
released simply by the run reaching a final state: nothing to forget on a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from phone_core import audit, db
from phone_core.errors import InputError, InsufficientCredits
from phone_core.models import MAX_CREDIT_AMOUNT, CreditSummary, RunState, UsageRow

ACTIVE_STATES = (RunState.QUEUED.value, RunState.RUNNING.value)
MAX_AMOUNT = MAX_CREDIT_AMOUNT


def check_amount(amount: int, what: str) -> None:
    """Refuse an amount that no real budget has (and that a column could not hold)."""
    if abs(amount) > MAX_AMOUNT:
        raise InputError(f"{what} must be at most {MAX_AMOUNT:,} credits")


@dataclass(frozen=True)
class Price:
    """What one source charges: per record sent, per phone found, per failed lookup."""

    source: str
    lookup_cost: int = 0
    found_cost: int = 1
    failed_cost: int = 0

    @property
    def not_found_cost(self) -> int:
        return self.lookup_cost + self.failed_cost

    def cost(self, *, found: bool, failed: bool = False) -> int:
        if found:
            return self.lookup_cost + self.found_cost
        return self.lookup_cost + (self.failed_cost if failed else 0)


@dataclass(frozen=True)
class Charge:
    """What one settled record of a run cost."""

    record_idx: int
    amount: int
    source: str


def worst_case(prices: Sequence[Price]) -> int:
    """Most one record can cost going down the whole waterfall (at most one source finds)."""
    if not prices:
        return 0
    base = sum(p.not_found_cost for p in prices)
    bonus = max(p.lookup_cost + p.found_cost - p.not_found_cost for p in prices)
    return base + max(0, bonus)


HIT_RATE_DAYS = 90  # the past runs a source's hit rate is measured over
PRIOR_HIT_RATE = 0.30  # what a source with no history is assumed to find...
PRIOR_LOOKUPS = 20  # ...weighted as this many lookups


@dataclass(frozen=True)
class SourceTally:
    """What the sources did with the records of past runs (``run_views.source_tally``)."""

    looked_up: int  # records that went down the waterfall: found, not found or error
    found: dict[str, int]  # source -> records it found a phone for
    failed: dict[str, int]  # source -> records that ended in error at it


@dataclass(frozen=True)
class SourceRate:
    """Of the records sent to a source, the share it finds, and the share that fail there."""

    hit: float
    failed: float = 0.0


def measured_rates(prices: Sequence[Price], tally: SourceTally) -> list[SourceRate]:
    """Each source's hit rate from past runs, in waterfall order (``prices``' order).

    Run records keep only their final source, so what a source was sent is rebuilt from the
    order: every record looked up reached the first source; the records that reached a
    source and were not found there reached the next. Phones found by a source that is no
    longer configured are taken off the start (they tell nothing about the ones that are).
    A source's rate is then smoothed towards a prior, as if it had also been sent
    ``PRIOR_LOOKUPS`` records and found ``PRIOR_HIT_RATE`` of them:

        hit = (found + PRIOR_HIT_RATE * PRIOR_LOOKUPS) / (reached + PRIOR_LOOKUPS)
        failed = failed lookups / (reached + PRIOR_LOOKUPS)

    so a source with little history counts as about 30% and one with thousands of lookups
    as what it measured. This assumes today's order was the order of those runs.
    """
    names = {p.source for p in prices}
    reached = tally.looked_up - sum(n for s, n in tally.found.items() if s not in names)
    rates: list[SourceRate] = []
    for price in prices:
        found = tally.found.get(price.source, 0)
        reached = max(reached, found)
        weight = reached + PRIOR_LOOKUPS
        hit = (found + PRIOR_HIT_RATE * PRIOR_LOOKUPS) / weight
        failed = min(tally.failed.get(price.source, 0) / weight, 1.0 - hit)
        rates.append(SourceRate(hit=min(hit, 1.0), failed=max(failed, 0.0)))
        reached -= found
    return rates


def expected_cost(prices: Sequence[Price], rates: Sequence[SourceRate]) -> tuple[float, float]:
    """(credits, chance of a phone) expected for one record sent down the waterfall.

    A record reaches a source with the chance that every source before it missed; there it
    costs the lookup price, plus the found price at the source's hit rate, plus the failed
    price at its failure rate. Never more than ``worst_case(prices)``.
    """
    reach, cost = 1.0, 0.0
    for price, rate in zip(prices, rates, strict=True):
        cost += reach * (
            price.lookup_cost + rate.hit * price.found_cost + rate.failed * price.failed_cost
        )
        reach *= 1.0 - rate.hit
    return min(cost, float(worst_case(prices))), 1.0 - reach


def admissible(budget_left: int, per_record_worst: int, wanted: int) -> int:
    """How many records may start now so that every worst case still fits the budget."""
    if wanted <= 0 or budget_left < 0:
        return 0
    if per_record_worst == 0:
        return wanted
    return min(wanted, budget_left // per_record_worst)


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def ensure_account(conn: Connection, user: str) -> None:
    exists = conn.execute(sa.select(db.accounts.c.user).where(db.accounts.c.user == user)).first()
    if not exists:
        conn.execute(sa.insert(db.accounts).values(user=user, created_at=db.utcnow()))


def lock_account(conn: Connection, user: str) -> None:
    """Serialise credit decisions for one user (row lock on PostgreSQL, write lock on SQLite).
    One statement when the account exists (the usual case)."""
    touch = sa.update(db.accounts).where(db.accounts.c.user == user).values(user=db.accounts.c.user)
    if conn.execute(touch).rowcount == 0:
        ensure_account(conn, user)
        conn.execute(touch)


def grant(conn: Connection, user: str, amount: int, note: str = "", by: str = "") -> None:
    if amount == 0:
        raise InputError("a grant must not be zero")
    check_amount(amount, "a grant")
    lock_account(conn, user)
    if amount < 0:
        summary = summarize(conn, user)
        if summary.balance + amount < summary.held:
            raise InputError(
                f"cannot remove {-amount} credits: {summary.held} are held by running batches"
                f" and the balance is {summary.balance}"
            )
    conn.execute(
        sa.insert(db.ledger).values(
            user=user,
            kind="grant",
            amount=amount,
            note=(note or (f"granted by {by}" if by else ""))[:500],
            created_at=db.utcnow(),
        )
    )
    audit.record(
        conn, action=audit.CREDIT_GRANT, target=user, detail={"amount": amount}, actor=by or None
    )


def record_charges(conn: Connection, user: str, run_id: str, charges: Sequence[Charge]) -> int:
    """Append the charges of settled records; returns their total.

    ``UNIQUE(run_id, record_idx)`` backs up the caller's own check: a record can never be
    charged twice, whatever runs twice.
    """
    rows = [
        {
            "user": user,
            "kind": "charge",
            "amount": c.amount,
            "run_id": run_id,
            "record_idx": c.record_idx,
            "source": c.source,
            "note": "",
            "created_at": db.utcnow(),
        }
        for c in charges
        if c.amount > 0
    ]
    if rows:
        conn.execute(sa.insert(db.ledger), rows)
    return sum(c.amount for c in charges if c.amount > 0)


def charge_single(conn: Connection, user: str, amount: int, source: str) -> None:
    """Charge one single-record lookup (``POST /v1/enrich/phone``): no run, no hold."""
    if amount <= 0:
        return
    conn.execute(
        sa.insert(db.ledger).values(
            user=user,
            kind="charge",
            amount=amount,
            run_id=None,
            record_idx=None,
            source=source[:50],
            note="single-record lookup",
            created_at=db.utcnow(),
        )
    )


def set_monthly_limit(conn: Connection, user: str, limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise InputError("a monthly limit must be 0 or more (or none)")
    if limit is not None:
        check_amount(limit, "a monthly limit")
    ensure_account(conn, user)
    conn.execute(
        sa.update(db.accounts).where(db.accounts.c.user == user).values(monthly_limit=limit)
    )
    shown: str | int = "none" if limit is None else limit
    audit.record(conn, action=audit.CREDIT_LIMIT, target=user, detail={"monthly_limit": shown})


def summarize(conn: Connection, user: str, now: datetime | None = None) -> CreditSummary:
    """The user's balance, holds, monthly spend and limit, in one query."""
    now = now or db.utcnow()
    led, runs, acc = db.ledger, db.runs, db.accounts
    charge = led.c.kind == "charge"

    def total(cond: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
        return sa.func.coalesce(sa.func.sum(sa.case((cond, led.c.amount), else_=0)), 0)

    held_q = (
        sa.select(sa.func.coalesce(sa.func.sum(runs.c.max_credits - runs.c.spent), 0))
        .where(runs.c.owner == user, runs.c.state.in_(ACTIVE_STATES))
        .scalar_subquery()
    )
    limit_q = sa.select(acc.c.monthly_limit).where(acc.c.user == user).scalar_subquery()
    row = conn.execute(
        sa.select(
            total(led.c.kind == "grant"),
            total(charge),
            total(sa.and_(charge, led.c.created_at >= month_start(now))),
            held_q,
            limit_q,
        ).where(led.c.user == user)
    ).one()
    granted, charged, month_spent, held = (int(v or 0) for v in row[:4])
    limit = None if row[4] is None else int(row[4])
    balance = granted - charged
    available = balance - held
    if limit is not None:
        available = min(available, limit - month_spent - held)
    return CreditSummary(
        user=user,
        balance=balance,
        held=held,
        available=max(0, available),
        monthly_limit=limit,
        spent_this_month=month_spent,
        granted_total=granted,
    )


def check_hold(conn: Connection, user: str, amount: int) -> None:
    """Raise InsufficientCredits unless ``amount`` can be held now (caller holds the lock)."""
    summary = summarize(conn, user)
    if amount > summary.available:
        reason = ""
        if summary.monthly_limit is not None and summary.available < summary.balance - summary.held:
            reason = f"monthly limit {summary.monthly_limit}"
        raise InsufficientCredits(required=amount, remaining=summary.available, reason=reason)


def all_summaries(conn: Connection) -> list[CreditSummary]:
    users = [r[0] for r in conn.execute(sa.select(db.accounts.c.user).order_by(db.accounts.c.user))]
    return [summarize(conn, u) for u in users]


def usage(
    conn: Connection,
    user: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    run_id: str | None = None,
) -> list[UsageRow]:
    """Charges grouped by user, day and run (newest day first)."""
    led = db.ledger
    day = sa.func.substr(sa.cast(led.c.created_at, sa.String), 1, 10)
    stmt = (
        sa.select(led.c.user, day.label("day"), led.c.run_id, sa.func.sum(led.c.amount))
        .where(led.c.kind == "charge")
        .group_by(led.c.user, day, led.c.run_id)
        .order_by(day.desc(), led.c.user)
    )
    if user is not None:
        stmt = stmt.where(led.c.user == user)
    if start is not None:
        stmt = stmt.where(led.c.created_at >= start)
    if end is not None:
        stmt = stmt.where(led.c.created_at < end)
    if run_id is not None:
        stmt = stmt.where(led.c.run_id == run_id)
    return [
        UsageRow(user=u, day=str(d), run_id=r, credits=int(c or 0))
        for u, d, r, c in conn.execute(stmt)
    ]


def grants(conn: Connection, user: str | None = None, limit: int = 200) -> list[dict[str, object]]:
    led = db.ledger
    stmt = (
        sa.select(led.c.user, led.c.amount, led.c.note, led.c.created_at)
        .where(led.c.kind == "grant")
        .order_by(led.c.id.desc())
        .limit(limit)
    )
    if user is not None:
        stmt = stmt.where(led.c.user == user)
    return [dict(r._mapping) for r in conn.execute(stmt)]
