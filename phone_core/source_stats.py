"""Per-source measurement: the only module that writes ``source_calls``.

The engine (and ``POST /v1/enrich/phone``) records one row for every record a source was
asked about, in the transaction that settles it: the answer (found / not_found / error
and its detail), the credits that source charged for it, and its latency. Latency is the
adapter's own figure when it reports one (``SourceResult.raw["latency_ms"]``), else the
time the engine waited for the call, divided evenly over the records of a bulk call
(so for a one-record-a-call vendor it includes the wait for its rate limit).

``stats`` sums a period up per source; ``suggested_order`` ranks vendors by expected
credits per phone found (see its docstring for the prior).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from phone_core import db
from phone_core.credits import PRIOR_HIT_RATE, PRIOR_LOOKUPS, Price
from phone_core.models import RecordStatus

_t = db.source_calls
# The prior of a source's hit rate: Beta(ALPHA, BETA), i.e. PRIOR_HIT_RATE (30%) weighted as
# PRIOR_LOOKUPS (20) lookups, the same prior the pre-flight uses (credits.measured_rates).
PRIOR_ALPHA = PRIOR_HIT_RATE * PRIOR_LOOKUPS
PRIOR_BETA = (1.0 - PRIOR_HIT_RATE) * PRIOR_LOOKUPS


@dataclass(frozen=True)
class Call:
    source: str
    status: str
    detail: str
    credits: int
    latency_ms: int


def record(conn: Connection, run_id: str | None, calls: Sequence[Call]) -> None:
    if not calls:
        return
    now = db.utcnow()
    conn.execute(
        sa.insert(_t),
        [
            {
                "source": c.source[:50],
                "run_id": run_id,
                "status": c.status,
                "detail": c.detail[:200],
                "credits": int(c.credits),
                "latency_ms": max(0, int(c.latency_ms)),
                "created_at": now,
            }
            for c in calls
        ],
    )


def purge_older(conn: Connection, before: datetime) -> int:
    """Remove the measurements taken before ``before`` (the retention purge): how many."""
    return int(conn.execute(sa.delete(_t).where(_t.c.created_at < before)).rowcount or 0)


@dataclass(frozen=True)
class SourceStats:
    source: str
    lookups: int = 0
    found: int = 0
    not_found: int = 0
    errors: int = 0
    credits: int = 0
    latency_p50_ms: int | None = None
    latency_p95_ms: int | None = None
    errors_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float | None:
        return self.found / self.lookups if self.lookups else None

    @property
    def cost_per_found(self) -> float | None:
        return self.credits / self.found if self.found else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "lookups": self.lookups,
            "found": self.found,
            "not_found": self.not_found,
            "errors": self.errors,
            "hit_rate": None if self.hit_rate is None else round(self.hit_rate, 4),
            "credits": self.credits,
            "cost_per_found": (
                None if self.cost_per_found is None else round(self.cost_per_found, 4)
            ),
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "errors_by_kind": dict(self.errors_by_kind),
        }


def _where(start: datetime | None, end: datetime | None) -> list[sa.ColumnElement[bool]]:
    out: list[sa.ColumnElement[bool]] = []
    if start is not None:
        out.append(_t.c.created_at >= start)
    if end is not None:
        out.append(_t.c.created_at < end)
    return out


def _percentile(
    conn: Connection, source: str, where: list[sa.ColumnElement[bool]], n: int, q: float
) -> int | None:
    """The nearest-rank ``q`` percentile of the source's latencies (n of them)."""
    if n == 0:
        return None
    rank = max(1, -(-int(q * 100) * n // 100))  # ceil(q * n), in integers
    value = conn.execute(
        sa.select(_t.c.latency_ms)
        .where(_t.c.source == source, *where)
        .order_by(_t.c.latency_ms)
        .offset(rank - 1)
        .limit(1)
    ).scalar()
    return None if value is None else int(value)


def stats(
    conn: Connection,
    start: datetime | None = None,
    end: datetime | None = None,
    names: Sequence[str] = (),
) -> list[SourceStats]:
    """One line per source seen in ``[start, end)`` (and per name in ``names`` even if
    unseen), sorted by name."""
    where = _where(start, end)
    rows = conn.execute(
        sa.select(_t.c.source, _t.c.status, _t.c.detail, sa.func.count(), sa.func.sum(_t.c.credits))
        .where(*where)
        .group_by(_t.c.source, _t.c.status, _t.c.detail)
    ).all()
    acc: dict[str, dict[str, Any]] = {n: {} for n in names}
    for source, status, detail, count, spent in rows:
        a = acc.setdefault(str(source), {})
        a["lookups"] = a.get("lookups", 0) + int(count)
        a["credits"] = a.get("credits", 0) + int(spent or 0)
        if status == RecordStatus.FOUND.value:
            a["found"] = a.get("found", 0) + int(count)
        elif status == RecordStatus.ERROR.value:
            a["errors"] = a.get("errors", 0) + int(count)
            kinds = a.setdefault("errors_by_kind", {})
            kinds[str(detail or "error")] = kinds.get(str(detail or "error"), 0) + int(count)
        else:
            a["not_found"] = a.get("not_found", 0) + int(count)
    out = []
    for source in sorted(acc):
        a = acc[source]
        n = int(a.get("lookups", 0))
        out.append(
            SourceStats(
                source=source,
                lookups=n,
                found=int(a.get("found", 0)),
                not_found=int(a.get("not_found", 0)),
                errors=int(a.get("errors", 0)),
                credits=int(a.get("credits", 0)),
                latency_p50_ms=_percentile(conn, source, where, n, 0.50),
                latency_p95_ms=_percentile(conn, source, where, n, 0.95),
                errors_by_kind=dict(a.get("errors_by_kind", {})),
            )
        )
    return out


def daily(
    conn: Connection, start: datetime | None = None, end: datetime | None = None
) -> list[dict[str, Any]]:
    """Per day and source: lookups and phones found (the page's chart)."""
    day = sa.func.substr(sa.cast(_t.c.created_at, sa.String), 1, 10)
    found = sa.func.sum(sa.case((_t.c.status == RecordStatus.FOUND.value, 1), else_=0))
    rows = conn.execute(
        sa.select(day.label("day"), _t.c.source, sa.func.count(), found)
        .where(*_where(start, end))
        .group_by(day, _t.c.source)
        .order_by(day, _t.c.source)
    ).all()
    return [
        {"day": str(d), "source": str(s), "lookups": int(n), "found": int(f or 0)}
        for d, s, n, f in rows
    ]


@dataclass(frozen=True)
class Suggestion:
    source: str
    hit_rate: float  # the posterior mean (measured, smoothed by the prior)
    cost_per_found: float  # expected credits per phone found at this source
    measured_lookups: int


def expected_hit_rate(found: int, lookups: int) -> float:
    """Posterior mean of a Beta(PRIOR_ALPHA, PRIOR_BETA) prior after ``found`` of
    ``lookups``: a new vendor counts as 30%, one with thousands of lookups as measured."""
    return (found + PRIOR_ALPHA) / (lookups + PRIOR_ALPHA + PRIOR_BETA)


def suggested_order(prices: Sequence[Price], measured: Sequence[SourceStats]) -> list[Suggestion]:
    """The sources ranked by expected credits per phone found, cheapest first.

    For a source with hit rate ``h`` and error rate ``e`` (both smoothed by the prior), one
    record sent costs ``lookup + h * found + e * failed`` and finds a phone with chance
    ``h``, so a phone found there costs that divided by ``h``. Sending each record to the
    sources in increasing order of this ratio minimises the expected spend per record when
    the sources find independently of one another (the classic ordering of sequential
    tests by cost / success probability). Rates measured lower down a waterfall only saw
    the records the sources above missed; the prior keeps a new vendor from ranking on
    a handful of lookups. Ties: the higher hit rate first, then the name.
    """
    by_name = {s.source: s for s in measured}
    out = []
    for price in prices:
        st = by_name.get(price.source, SourceStats(price.source))
        hit = expected_hit_rate(st.found, st.lookups)
        err = st.errors / (st.lookups + PRIOR_LOOKUPS)
        per_record = price.lookup_cost + hit * price.found_cost + err * price.failed_cost
        out.append(Suggestion(price.source, hit, per_record / hit, st.lookups))
    out.sort(key=lambda s: (round(s.cost_per_found, 9), -s.hit_rate, s.source))
    return out


def first_call(conn: Connection) -> datetime | None:
    """When the oldest recorded call was made (None: nothing measured yet)."""
    value = conn.execute(sa.select(sa.func.min(_t.c.created_at))).scalar()
    return value if isinstance(value, datetime) else None
