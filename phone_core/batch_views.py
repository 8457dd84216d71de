"""Batches as read models: an upload's parts and re-runs combined into one ``Batch``.

A batch is every run sharing ``runs.batch_id``: the parts of one upload (one run per
``MAX_BATCH`` rows, created together) and each later re-run of its failed rows (a
"submission" each). Each record knows its row in the upload (``run_records.batch_row``),
so the batch reads as the upload: one line per row, each row's newest outcome (a row
re-run counts by its re-run). Version ``n`` of the merged files is the rows as they stood
when submission ``n`` had finished: it never changes afterwards.

Read-only: ``runs`` writes these tables.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from phone_core import credits, db
from phone_core.errors import NotFound
from phone_core.models import (
    Batch,
    BatchPart,
    BatchVersion,
    RecordOutcome,
    RecordStatus,
    RunCounts,
    RunState,
)
from phone_core.run_views import counts, outcome_of, to_model, worth_rerun
from phone_core.runs import RunRow

rr = db.run_records
rt_ = db.runs

# The worst first: a finished batch reads as the worst stop among the runs that still
# hold a row it did not process.
STOP_SEVERITY = (
    RunState.FAILED,
    RunState.CANCELLED,
    RunState.CREDIT_LIMIT_REACHED,
    RunState.COMPLETED,
)
STOPPED = tuple(s.value for s in STOP_SEVERITY if s != RunState.COMPLETED)
_PART_SUFFIX = re.compile(r" \(part \d+/\d+\)$")


def batch_rows(conn: Connection, batch_id: str, owner: str | None = None) -> list[RunRow]:
    """The batch's runs in the order they were created (NotFound if none is visible)."""
    stmt = sa.select(rt_).where(rt_.c.batch_id == batch_id)
    if owner is not None:
        stmt = stmt.where(rt_.c.owner == owner)
    rows = [RunRow.of(r) for r in conn.execute(stmt)]
    if not rows:
        raise NotFound(f"batch {batch_id} not found")
    return _ordered(rows)


def _ordered(rows: Sequence[RunRow]) -> list[RunRow]:
    return sorted(rows, key=lambda r: (r.created_at, r.group_seq, r.run_id))


def submissions(rows: Sequence[RunRow]) -> list[list[RunRow]]:
    """The runs grouped by what created them together (the upload, then each re-run)."""
    out: dict[str, list[RunRow]] = {}
    for row in _ordered(rows):
        out.setdefault(row.group_id or row.run_id, []).append(row)
    return sorted(out.values(), key=lambda sub: (sub[0].created_at, sub[0].run_id))


def tally(items: Sequence[RecordOutcome]) -> RunCounts:
    """Counts per status of outcomes (as ``run_views.counts`` does for a run's records)."""
    c = RunCounts()
    for o in items:
        c.total += 1
        key = "pending" if o.status is None else o.status.value
        setattr(c, key, getattr(c, key) + 1)
        if o.status == RecordStatus.DUPLICATE and o.phone:
            c.duplicate_with_phone += 1
        if o.dnc_list and o.phone:
            c.dnc_flagged += 1
    return c


def _sum(parts: Sequence[RunCounts]) -> RunCounts:
    total = RunCounts()
    for c in parts:
        for name in RunCounts.model_fields:
            setattr(total, name, getattr(total, name) + getattr(c, name))
    return total


def combined_state(rows: Sequence[RunRow], unprocessed_in: set[str]) -> RunState:
    """Running while a part runs (or waits for the part before it); queued while every
    unfinished run is yet to start; else the worst stop among the runs holding a row not
    processed (completed when there is none)."""
    unfinished = [r for r in rows if not r.state.finished]
    if unfinished:
        done = {(r.group_id, r.group_seq) for r in rows if r.group_id and r.state.finished}
        between = any((r.group_id, r.group_seq - 1) in done for r in unfinished)
        if between or any(r.state == RunState.RUNNING for r in unfinished):
            return RunState.RUNNING
        return RunState.QUEUED
    stops = [r.state for r in rows if r.run_id in unprocessed_in]
    return min(stops, key=STOP_SEVERITY.index, default=RunState.COMPLETED)


def versions(rows: Sequence[RunRow]) -> list[BatchVersion]:
    """Versions ready: one per submission, once it and every earlier one have finished."""
    out: list[BatchVersion] = []
    for n, sub in enumerate(submissions(rows), start=1):
        if not all(r.state.finished for r in sub):
            break
        ends = [r.finished_at for r in sub if r.finished_at is not None]
        note = "the upload" if n == 1 else f"after re-run {n - 1}"
        out.append(BatchVersion(version=n, created_at=max(ends, default=None), note=note))
    return out


def version_rows(rows: Sequence[RunRow], version: int) -> list[RunRow]:
    """The runs version ``version`` is made of (its submission and the earlier ones)."""
    subs = submissions(rows)
    if not 1 <= version <= len(subs):
        raise NotFound(f"this batch has no version {version}")
    return [r for sub in subs[:version] for r in sub]


def label_of(rows: Sequence[RunRow]) -> str:
    first = _ordered(rows)[0]
    return _PART_SUFFIX.sub("", first.label) if first.group_id else first.label


def _parts(rows: Sequence[RunRow], run_counts: dict[str, RunCounts]) -> list[BatchPart]:
    out: list[BatchPart] = []
    for n, sub in enumerate(submissions(rows), start=1):
        for row in sub:
            waits = row.state == RunState.QUEUED and row.group_seq > 0
            out.append(
                BatchPart(
                    run=to_model(row, run_counts[row.run_id]),
                    submission=n,
                    part=row.group_seq + 1,
                    parts=len(sub),
                    waiting_for=row.group_seq if waits else None,
                )
            )
    return out


def to_batch(conn: Connection, rows: Sequence[RunRow], run_counts: dict[str, RunCounts]) -> Batch:
    rows = _ordered(rows)
    if len(submissions(rows)) == 1:  # each row has one record: the runs' counts add up
        combined = _sum([run_counts[r.run_id] for r in rows])
        unprocessed = {r.run_id for r in rows if run_counts[r.run_id].not_processed}
    else:  # each row's newest outcome, counted in the DB
        now = current_counts(conn, rows)
        combined = _sum(list(now.values()))
        unprocessed = {run_id for run_id, c in now.items() if c.not_processed}
    finished = all(r.state.finished for r in rows)
    ends = [r.finished_at for r in rows if r.finished_at is not None]
    notices = list(dict.fromkeys(r.notice for r in rows if r.notice))
    return Batch(
        batch_id=rows[0].batch_id,
        owner=rows[0].owner,
        label=label_of(rows),
        state=combined_state(rows, unprocessed),
        created_at=rows[0].created_at,
        finished_at=max(ends) if finished and ends else None,
        counts=combined,
        credits_spent=sum(r.spent for r in rows),
        budget=sum(r.max_credits for r in rows if r.group_seq == 0),
        credits_held=sum(max(0, r.budget_left) for r in rows if not r.state.finished),
        cancel_requested=any(r.cancel_requested for r in rows if not r.state.finished),
        notice="; ".join(notices)[:1000],
        parts=_parts(rows, run_counts),
        versions=versions(rows),
    )


def load_batch(conn: Connection, batch_id: str, owner: str | None = None) -> Batch:
    rows = batch_rows(conn, batch_id, owner)
    return to_batch(conn, rows, counts(conn, [r.run_id for r in rows]))


def load_batches(conn: Connection, owner: str | None = None) -> list[Batch]:
    """Newest first; every owner's when ``owner`` is None (all of them: the API and
    tests; the Runs page asks for one page: ``batch_page``)."""
    stmt = sa.select(rt_)
    if owner is not None:
        stmt = stmt.where(rt_.c.owner == owner)
    return _batches(conn, [RunRow.of(r) for r in conn.execute(stmt)])


def _batches(conn: Connection, rows: Sequence[RunRow]) -> list[Batch]:
    by_run = counts(conn, [r.run_id for r in rows])
    groups: dict[str, list[RunRow]] = {}
    for row in rows:
        groups.setdefault(row.batch_id, []).append(row)
    batches = [to_batch(conn, group, by_run) for group in groups.values()]
    return sorted(batches, key=lambda b: (b.created_at, b.batch_id), reverse=True)


# --- server-side pages: one page of batches, one page of a batch's rows -----------------

BATCH_STATES = ("all", "active", "completed", "stopped")  # the Runs page's state filter
ROW_FILTERS = ("all", "phone", "no_phone", "failed")  # the rows table's filter


@dataclass(frozen=True)
class BatchQuery:
    """Which batches: an owner's (None: everyone's), in a state (``BATCH_STATES``), whose
    name contains ``search`` (or whose id starts with it), created in [since, until)."""

    owner: str | None = None
    state: str = "all"
    search: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class BatchPage:
    """One page of batches, newest first, and how many match in all."""

    batches: list[Batch]
    total: int


@dataclass(frozen=True)
class BatchOverview:
    """An owner's batches in numbers (for the page's frame, without reading them)."""

    batches: int
    active: int  # batches with a queued or running run
    newest: str | None  # the newest batch's id
    owners: list[str] = field(default_factory=list)  # owners with a batch (owner None)


def _scope(stmt: Any, owner: str | None) -> Any:
    return stmt if owner is None else stmt.where(rt_.c.owner == owner)


def _stopped_early() -> ColumnElement[bool]:
    """For the group of ``runs`` by batch_id: a run stopped early (cap, cancel, failure)
    still holds a row not processed, one no later re-run of the batch took over: the
    batch reads as stopped early (``combined_state``), all in the DB."""
    s, x, later, y = rt_.alias("s"), rr.alias("x"), rt_.alias("l"), rr.alias("y")
    taken_over = sa.exists().where(
        later.c.batch_id == s.c.batch_id,
        later.c.created_at > s.c.created_at,
        sa.func.coalesce(later.c.group_id, later.c.run_id)
        != sa.func.coalesce(s.c.group_id, s.c.run_id),
        y.c.run_id == later.c.run_id,
        y.c.batch_row == x.c.batch_row,
    )
    return sa.exists().where(
        s.c.batch_id == rt_.c.batch_id,
        s.c.state.in_(STOPPED),
        x.c.run_id == s.c.run_id,
        x.c.status == RecordStatus.NOT_PROCESSED.value,
        ~taken_over,
    )


def _grouped(query: BatchQuery) -> Any:
    """One line per batch matching ``query``: (batch_id, created)."""
    active = sa.func.sum(sa.case((rt_.c.state.in_(credits.ACTIVE_STATES), 1), else_=0))
    stopped = sa.func.sum(sa.case((rt_.c.state.in_(STOPPED), 1), else_=0))
    created = sa.func.min(rt_.c.created_at)
    stmt = _scope(
        sa.select(rt_.c.batch_id, created.label("created")).group_by(rt_.c.batch_id),
        query.owner,
    )
    wanted = " ".join(query.search.split()).casefold()
    if wanted:
        named = sa.func.lower(rt_.c.label).contains(wanted, autoescape=True)
        by_id = rt_.c.batch_id.startswith(wanted, autoescape=True)
        stmt = stmt.having(sa.func.max(sa.case((sa.or_(named, by_id), 1), else_=0)) == 1)
    if query.since is not None:
        stmt = stmt.having(created >= query.since)
    if query.until is not None:
        stmt = stmt.having(created < query.until)
    if query.state == "active":
        stmt = stmt.having(active > 0)
    elif query.state == "completed":
        stmt = stmt.having(active == 0, sa.or_(stopped == 0, ~_stopped_early()))
    elif query.state == "stopped":
        stmt = stmt.having(active == 0, stopped > 0, _stopped_early())
    elif query.state != "all":
        raise ValueError(f"unknown batch state filter {query.state!r}")
    return stmt


def batch_page(conn: Connection, query: BatchQuery, limit: int, offset: int = 0) -> BatchPage:
    """The batches matching ``query``, newest first: ``limit`` from ``offset``, and the
    number matching. Only the page's batches are read in full (their runs and counts)."""
    grouped = _grouped(query).subquery()
    total = int(conn.execute(sa.select(sa.func.count()).select_from(grouped)).scalar() or 0)
    ids = [
        str(b)
        for b in conn.execute(
            sa.select(grouped.c.batch_id)
            .order_by(grouped.c.created.desc(), grouped.c.batch_id.desc())
            .limit(limit)
            .offset(offset)
        ).scalars()
    ]
    if not ids:
        return BatchPage([], total)
    rows = [RunRow.of(r) for r in conn.execute(sa.select(rt_).where(rt_.c.batch_id.in_(ids)))]
    return BatchPage(_batches(conn, rows), total)


def batch_overview(conn: Connection, owner: str | None = None) -> BatchOverview:
    """How many batches, how many active, the newest: aggregates over ``runs``."""
    n = _scope(sa.select(sa.func.count(sa.distinct(rt_.c.batch_id))), owner)
    active = n.where(rt_.c.state.in_(credits.ACTIVE_STATES))
    grouped = _grouped(BatchQuery(owner=owner)).subquery()
    newest = conn.execute(
        sa.select(grouped.c.batch_id)
        .order_by(grouped.c.created.desc(), grouped.c.batch_id.desc())
        .limit(1)
    ).scalar()
    owners = []
    if owner is None:
        owners = [str(o) for o in conn.execute(sa.select(rt_.c.owner).distinct()).scalars()]
    return BatchOverview(
        batches=int(conn.execute(n).scalar() or 0),
        active=int(conn.execute(active).scalar() or 0),
        newest=None if newest is None else str(newest),
        owners=sorted(owners),
    )


def _current(rows: Sequence[RunRow], r: Any, *, settled_only: bool) -> ColumnElement[bool]:
    """For records ``r`` of the batch of ``rows``: the record is its row's newest outcome,
    the one every page, count and file of the batch shows: no run of a later submission
    has a record for the same row (a settled one, with ``settled_only``, which also skips
    pending records; the older outcome shows until then)."""
    subs = submissions(rows)
    clauses: list[ColumnElement[bool]] = []
    for k, sub in enumerate(subs):
        mine = r.c.run_id.in_([x.run_id for x in sub])
        later = [x.run_id for s in subs[k + 1 :] for x in s]
        if later:
            y = rr.alias("y")
            newer = sa.exists().where(y.c.run_id.in_(later), y.c.batch_row == r.c.batch_row)
            if settled_only:
                newer = newer.where(y.c.status.is_not(None))
            mine = sa.and_(mine, ~newer)
        clauses.append(mine)
    out = sa.or_(*clauses)
    return sa.and_(out, r.c.status.is_not(None)) if settled_only else out


def current_counts(conn: Connection, rows: Sequence[RunRow]) -> dict[str, RunCounts]:
    """Per run of the batch, the counts of the rows whose newest outcome it holds
    (``tally`` of those outcomes, as aggregates)."""
    r = rr.alias("r")
    now = _current(rows, r, settled_only=False)
    out = {row.run_id: RunCounts() for row in rows}
    stmt = sa.select(r.c.run_id, r.c.status, sa.func.count()).where(now)
    for run_id, status, n in conn.execute(stmt.group_by(r.c.run_id, r.c.status)):
        c = out[str(run_id)]
        c.total += n
        key = "pending" if status is None else str(status)
        setattr(c, key, getattr(c, key) + n)
    dups = sa.select(r.c.run_id, sa.func.count()).where(
        now, r.c.status == RecordStatus.DUPLICATE.value, r.c.phone != ""
    )
    for run_id, n in conn.execute(dups.group_by(r.c.run_id)):
        out[str(run_id)].duplicate_with_phone += int(n)
    return out


_PHONE_STATUSES = tuple(s.value for s in RecordStatus if s.carries_phone)


def _row_filter(r: Any, key: str) -> ColumnElement[bool]:
    """The rows table's filters (``ROW_FILTERS``) as SQL, NULL-safe."""
    with_phone = sa.and_(r.c.status.is_not(None), r.c.status.in_(_PHONE_STATUSES), r.c.phone != "")
    if key == "all":
        return sa.true()
    if key == "phone":
        return with_phone
    if key == "no_phone":
        return sa.not_(with_phone)
    if key == "failed":
        failed = (RecordStatus.NOT_PROCESSED.value, RecordStatus.ERROR.value)
        return sa.or_(r.c.status.is_(None), r.c.status.in_(failed))
    raise ValueError(f"unknown row filter {key!r}")


def outcome_page(
    conn: Connection,
    rows: Sequence[RunRow],
    row_filter: str,
    limit: int,
    offset: int = 0,
    *,
    settled_only: bool = True,
) -> tuple[list[RecordOutcome], int]:
    """One page of the batch's rows in upload order (each row's newest outcome,
    ``_current``) passing ``row_filter``, and how many pass it."""
    r = rr.alias("r")
    where = sa.and_(_current(rows, r, settled_only=settled_only), _row_filter(r, row_filter))
    total = int(conn.execute(sa.select(sa.func.count()).where(where)).scalar() or 0)
    stmt = sa.select(r).where(where).order_by(r.c.batch_row).limit(limit).offset(offset)
    items = [outcome_of(m, int(m["batch_row"])) for m in (x._mapping for x in conn.execute(stmt))]
    return items, total


def row_end(conn: Connection, rows: Sequence[RunRow]) -> int:
    """One past the last upload row the runs ``rows`` hold (0 when they hold none)."""
    stmt = sa.select(sa.func.max(rr.c.batch_row)).where(rr.c.run_id.in_([r.run_id for r in rows]))
    last = conn.execute(stmt).scalar()
    return 0 if last is None else int(last) + 1


def current_window(
    conn: Connection, rows: Sequence[RunRow], start: int, end: int
) -> list[RecordOutcome]:
    """The newest outcome (``_current``) of each upload row from ``start`` to ``end``
    (excluded) over ``rows``, in upload order. A batch's files are written a window at
    a time (read on the ``(run_id, batch_row)`` index), never from all its rows at once."""
    r = rr.alias("r")
    stmt = (
        sa.select(r)
        .where(
            _current(rows, r, settled_only=False),
            r.c.batch_row >= start,
            r.c.batch_row < end,
        )
        .order_by(r.c.batch_row)
    )
    return [outcome_of(m, int(m["batch_row"])) for m in (x._mapping for x in conn.execute(stmt))]


def outcome_tally(conn: Connection, rows: Sequence[RunRow]) -> dict[tuple[str, str | None], int]:
    """(source, status) -> rows, over each row's newest outcome (the chart by source)."""
    r = rr.alias("r")
    stmt = (
        sa.select(r.c.source, r.c.status, sa.func.count())
        .where(_current(rows, r, settled_only=False))
        .group_by(r.c.source, r.c.status)
    )
    return {(str(src or ""), st): int(n) for src, st, n in conn.execute(stmt)}


def _failed_now(rows: Sequence[RunRow], r: Any) -> ColumnElement[bool]:
    return sa.and_(_current(rows, r, settled_only=False), worth_rerun(r))


def count_current_failed(conn: Connection, rows: Sequence[RunRow]) -> int:
    """Rows whose newest outcome is worth another try (``run_views.worth_rerun``): the
    rows a batch re-run would send."""
    r = rr.alias("r")
    stmt = sa.select(sa.func.count()).where(_failed_now(rows, r))
    return int(conn.execute(stmt).scalar() or 0)


def current_failed(conn: Connection, rows: Sequence[RunRow]) -> list[RecordOutcome]:
    """Those rows (``count_current_failed``), their newest outcomes in upload order: only
    them are read, not the whole batch."""
    r = rr.alias("r")
    stmt = sa.select(r).where(_failed_now(rows, r)).order_by(r.c.batch_row)
    return [outcome_of(m, int(m["batch_row"])) for m in (x._mapping for x in conn.execute(stmt))]


def batch_of_run(conn: Connection, run_id: str, owner: str | None = None) -> str:
    stmt = sa.select(rt_.c.batch_id, rt_.c.group_id).where(rt_.c.run_id == run_id)
    if owner is not None:
        stmt = stmt.where(rt_.c.owner == owner)
    found = conn.execute(stmt).first()
    if found is None:
        raise NotFound(f"run {run_id} not found")
    return str(found[0] or found[1] or run_id)


def upload_rows(conn: Connection, run_id: str) -> dict[int, int]:
    """A run's record index -> its row in the batch's upload."""
    stmt = sa.select(rr.c.idx, rr.c.batch_row).where(rr.c.run_id == run_id)
    return {int(i): int(b if b is not None else i) for i, b in conn.execute(stmt)}
