"""Runs and their records as read models: the ``Run`` and ``RecordOutcome`` pages,
APIs and output files show, counts per status, holds, and the runs ready to start.

Read-only: ``runs`` is the module that writes these tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from phone_core import credits, db
from phone_core.models import (
    PERSON_FIELDS,
    RecordOutcome,
    RecordStatus,
    Run,
    RunCounts,
    RunState,
)
from phone_core.runs import RunRow, get, person_of

rr = db.run_records
rt_ = db.runs
_PERSON_COLS = PERSON_FIELDS[1:]


def counts(conn: Connection, run_ids: Sequence[str]) -> dict[str, RunCounts]:
    """Per run, its records per status. Two aggregates on the (run_id, status) index:
    the counts read the index only, the duplicates with a phone look at those rows only."""
    out = {rid: RunCounts() for rid in run_ids}
    if not run_ids:
        return out
    for start in range(0, len(run_ids), 500):
        part = list(run_ids[start : start + 500])
        stmt = (
            sa.select(rr.c.run_id, rr.c.status, sa.func.count())
            .where(rr.c.run_id.in_(part))
            .group_by(rr.c.run_id, rr.c.status)
        )
        for run_id, status, n in conn.execute(stmt):
            c = out[run_id]
            c.total += n
            key = "pending" if status is None else str(status)
            setattr(c, key, getattr(c, key) + n)
        dups = (
            sa.select(rr.c.run_id, sa.func.count())
            .where(
                rr.c.run_id.in_(part),
                rr.c.status == RecordStatus.DUPLICATE.value,
                rr.c.phone != "",
            )
            .group_by(rr.c.run_id)
        )
        for run_id, n in conn.execute(dups):
            out[run_id].duplicate_with_phone += int(n)
        flagged = (
            sa.select(rr.c.run_id, sa.func.count())
            .where(rr.c.run_id.in_(part), rr.c.phone != "", rr.c.dnc_list != "")
            .group_by(rr.c.run_id)
        )
        for run_id, n in conn.execute(flagged):
            out[run_id].dnc_flagged += int(n)
    return out


def to_model(row: RunRow, run_counts: RunCounts) -> Run:
    return Run(
        run_id=row.run_id,
        owner=row.owner,
        state=row.state,
        max_credits=row.max_credits,
        credits_spent=row.spent,
        credits_held=0 if row.state.finished else max(0, row.budget_left),
        counts=run_counts,
        result_path=row.result_path,
        credits_csv_path=row.credits_path,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        cancel_requested=row.cancel_requested,
        notice=row.notice,
        label=row.label,
        parent_run_id=row.parent_run_id,
    )


def load_run(conn: Connection, run_id: str, owner: str | None = None) -> Run:
    row = get(conn, run_id, owner)
    return to_model(row, counts(conn, [run_id])[run_id])


def load_runs(conn: Connection, owner: str | None = None, limit: int = 200) -> list[Run]:
    """Newest first; every owner's when ``owner`` is None."""
    stmt = sa.select(rt_).order_by(rt_.c.created_at.desc()).limit(limit)
    if owner is not None:
        stmt = stmt.where(rt_.c.owner == owner)
    rows = [RunRow.of(r) for r in conn.execute(stmt)]
    by_run = counts(conn, [r.run_id for r in rows])
    return [to_model(r, by_run[r.run_id]) for r in rows]


def outcome_of(m: Any, idx: int | None = None) -> RecordOutcome:
    """The outcome of a ``run_records`` row (at ``idx``, default: its index in the run)."""
    return RecordOutcome(
        idx=m["idx"] if idx is None else idx,
        person=person_of(m),
        status=RecordStatus(m["status"]) if m["status"] else None,
        source=m["source"],
        phone=m["phone"],
        credits_charged=m["credits"],
        detail=m["detail"],
        source_row=m["source_row"],
        dnc_list=m["dnc_list"] or "",
    )


def outcomes(conn: Connection, run_id: str) -> list[RecordOutcome]:
    rows = conn.execute(sa.select(rr).where(rr.c.run_id == run_id).order_by(rr.c.idx))
    return [outcome_of(m) for m in (r._mapping for r in rows)]


# The re-run rule, its one home: a row is worth another try when it ended in error or was
# not processed (an id with no stored person is ``skipped``, so it is never re-run). A
# run's and a batch's re-run, and the counts their pages show, all select with it.
RERUN_STATUSES = (RecordStatus.ERROR.value, RecordStatus.NOT_PROCESSED.value)


def worth_rerun(r: Any) -> ColumnElement[bool]:
    """The re-run rule over ``r``, the run_records table or an alias of it."""
    status: sa.ColumnElement[str] = r.c.status
    return status.in_(RERUN_STATUSES)


def failed_outcomes(conn: Connection, run_id: str) -> list[RecordOutcome]:
    """The run's rows worth another try (``worth_rerun``), in input order."""
    stmt = sa.select(rr).where(rr.c.run_id == run_id, worth_rerun(rr)).order_by(rr.c.idx)
    return [outcome_of(m) for m in (r._mapping for r in conn.execute(stmt))]


def failed_count(conn: Connection, run_id: str) -> int:
    """How many rows a re-run of the run would send, counted on the (run_id, status) index."""
    stmt = sa.select(sa.func.count()).where(rr.c.run_id == run_id, worth_rerun(rr))
    return int(conn.execute(stmt).scalar() or 0)


def queued_ready(conn: Connection) -> list[str]:
    """Queued runs that may start now: not waiting for an earlier part of their upload."""
    rows = list(
        conn.execute(
            sa.select(rt_.c.run_id, rt_.c.group_id, rt_.c.group_seq).where(
                rt_.c.state == RunState.QUEUED.value
            )
        )
    )
    ready = []
    for run_id, group_id, seq in rows:
        if group_id and seq > 0:
            prev = conn.execute(
                sa.select(rt_.c.state).where(rt_.c.group_id == group_id, rt_.c.group_seq == seq - 1)
            ).scalar()
            if prev is None or not RunState(prev).finished:
                continue
        ready.append(str(run_id))
    return ready


def active_holds(conn: Connection, owner: str) -> list[tuple[str, int]]:
    """(run_id, credits held) for each of the owner's queued/running runs holding credits."""
    held = rt_.c.max_credits - rt_.c.spent
    stmt = (
        sa.select(rt_.c.run_id, held)
        .where(rt_.c.owner == owner, rt_.c.state.in_(credits.ACTIVE_STATES), held > 0)
        .order_by(rt_.c.created_at)
    )
    return [(str(run_id), int(n)) for run_id, n in conn.execute(stmt)]


def names(conn: Connection, run_ids: Sequence[str]) -> dict[str, tuple[str, datetime]]:
    """run id -> (label, created at), for reports that list runs by name."""
    wanted = sorted(set(run_ids))
    out: dict[str, tuple[str, datetime]] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        rows = conn.execute(
            sa.select(rt_.c.run_id, rt_.c.label, rt_.c.created_at).where(rt_.c.run_id.in_(part))
        )
        out.update({str(r): (str(label or ""), created) for r, label, created in rows})
    return out


def source_tally(conn: Connection, since: datetime) -> credits.SourceTally:
    """Per source, the records of runs created since ``since`` that it found or failed on,
    and how many records went down the waterfall at all (for ``credits.measured_rates``)."""
    looked_up = (RecordStatus.FOUND.value, RecordStatus.NOT_FOUND.value, RecordStatus.ERROR.value)
    rows = conn.execute(
        sa.select(rr.c.status, rr.c.source, sa.func.count())
        .select_from(rr.join(rt_, rr.c.run_id == rt_.c.run_id))
        .where(rt_.c.created_at >= since, rr.c.status.in_(looked_up))
        .group_by(rr.c.status, rr.c.source)
    ).all()
    found: dict[str, int] = {}
    failed: dict[str, int] = {}
    for status, source, count in rows:
        if status == RecordStatus.FOUND.value:
            found[source] = found.get(source, 0) + int(count)
        elif status == RecordStatus.ERROR.value:
            failed[source] = failed.get(source, 0) + int(count)
    return credits.SourceTally(
        looked_up=sum(int(count) for _, _, count in rows), found=found, failed=failed
    )


def group_rows(conn: Connection, group_id: str) -> list[RunRow]:
    """The runs (parts) of one upload, in order."""
    stmt = sa.select(rt_).where(rt_.c.group_id == group_id).order_by(rt_.c.group_seq)
    return [RunRow.of(r) for r in conn.execute(stmt)]


def finished_since(conn: Connection, owner: str, since: datetime, limit: int = 50) -> list[str]:
    """Ids of the owner's runs that became final at or after ``since``: the latest
    ``limit`` of them, oldest first."""
    stmt = (
        sa.select(rt_.c.run_id)
        .where(rt_.c.owner == owner, rt_.c.finished_at >= since)
        .order_by(rt_.c.finished_at.desc())
        .limit(limit)
    )
    return [str(r) for r in reversed(conn.execute(stmt).scalars().all())]


def active_progress(conn: Connection, owner: str) -> tuple[int, int, int]:
    """(active runs, their rows dealt with, their rows) for the owner's queued and
    running runs: the progress the browser tab shows."""
    ids = [
        str(r)
        for r in conn.execute(
            sa.select(rt_.c.run_id).where(
                rt_.c.owner == owner, rt_.c.state.in_(credits.ACTIVE_STATES)
            )
        ).scalars()
    ]
    by_run = counts(conn, ids)
    return (
        len(ids),
        sum(c.handled for c in by_run.values()),
        sum(c.total for c in by_run.values()),
    )
