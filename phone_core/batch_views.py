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
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from phone_core import db
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
from phone_core.run_views import counts, outcome_of, to_model
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
_PART_SUFFIX = re.compile(r" \(part \d+/\d+\)$")


@dataclass(frozen=True)
class Current:
    """A row's newest outcome and the run it comes from."""

    run_id: str
    outcome: RecordOutcome


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


def current(
    conn: Connection, rows: Sequence[RunRow], *, settled_only: bool = False
) -> list[Current]:
    """Each upload row's newest outcome over ``rows`` (later runs win), in upload order;
    ``settled_only`` skips a row's pending records (the older outcome shows until then).
    The outcome's ``idx`` is the row in the upload."""
    rank = {r.run_id: i for i, r in enumerate(_ordered(rows))}
    best: dict[int, tuple[int, Current]] = {}
    stmt = sa.select(rr).where(rr.c.run_id.in_(list(rank)))
    if settled_only:
        stmt = stmt.where(rr.c.status.is_not(None))
    for m in (r._mapping for r in conn.execute(stmt)):
        run_id = str(m["run_id"])
        row = int(m["batch_row"] if m["batch_row"] is not None else m["idx"])
        held = best.get(row)
        if held is not None and held[0] > rank[run_id]:
            continue
        best[row] = (rank[run_id], Current(run_id, outcome_of(m, row)))
    return [best[k][1] for k in sorted(best)]


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
        for field in RunCounts.model_fields:
            setattr(total, field, getattr(total, field) + getattr(c, field))
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
    else:
        now = current(conn, rows)
        combined = tally([c.outcome for c in now])
        unprocessed = {c.run_id for c in now if c.outcome.status == RecordStatus.NOT_PROCESSED}
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
    """Newest first; every owner's when ``owner`` is None."""
    stmt = sa.select(rt_)
    if owner is not None:
        stmt = stmt.where(rt_.c.owner == owner)
    rows = [RunRow.of(r) for r in conn.execute(stmt)]
    by_run = counts(conn, [r.run_id for r in rows])
    groups: dict[str, list[RunRow]] = {}
    for row in rows:
        groups.setdefault(row.batch_id, []).append(row)
    batches = [to_batch(conn, group, by_run) for group in groups.values()]
    return sorted(batches, key=lambda b: (b.created_at, b.batch_id), reverse=True)


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
