"""Runs and their records in the state DB: the only module that writes ``runs`` and
``run_records``. Create, start, settle, cancel, finish; rows come back as ``RunRow``.

Every record write is conditional on the record still being pending, and its charge is
written in the same transaction with a unique (run, record) key: a wave that runs twice
(crash and recovery, or two executors racing) can never charge a record twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from phone_core import credits, db
from phone_core.credits import Charge
from phone_core.errors import NotFound
from phone_core.models import (
    PERSON_FIELDS,
    Detail,
    Person,
    RecordOutcome,
    RecordStatus,
    Run,
    RunCounts,
    RunState,
)

rr = db.run_records
rt_ = db.runs
_PERSON_COLS = PERSON_FIELDS[1:]


@dataclass(frozen=True)
class RunRow:
    """One row of ``runs``, typed."""

    run_id: str
    owner: str
    state: RunState
    max_credits: int
    spent: int
    total: int
    worst_case: int
    result_path: str
    credits_path: str
    cancel_requested: bool
    notice: str
    disabled_sources: dict[str, str]
    label: str
    parent_run_id: str | None
    group_id: str | None
    group_seq: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, row: sa.Row[Any]) -> RunRow:
        m = row._mapping
        return cls(
            run_id=str(m["run_id"]),
            owner=str(m["owner"]),
            state=RunState(m["state"]),
            max_credits=int(m["max_credits"]),
            spent=int(m["spent"]),
            total=int(m["total"]),
            worst_case=int(m["worst_case"]),
            result_path=str(m["result_path"]),
            credits_path=str(m["credits_path"]),
            cancel_requested=bool(m["cancel_requested"]),
            notice=str(m["notice"] or ""),
            disabled_sources=dict(m["disabled_sources"] or {}),
            label=str(m["label"] or ""),
            parent_run_id=m["parent_run_id"],
            group_id=m["group_id"],
            group_seq=int(m["group_seq"] or 0),
            created_at=m["created_at"],
            started_at=m["started_at"],
            finished_at=m["finished_at"],
        )

    @property
    def budget_left(self) -> int:
        return self.max_credits - self.spent


@dataclass(frozen=True)
class NewRun:
    """What ``create`` needs to insert one run (its records come separately)."""

    run_id: str
    owner: str
    max_credits: int
    total: int
    worst_case: int
    result_path: str
    credits_path: str
    label: str = ""
    parent_run_id: str | None = None
    group_id: str | None = None
    group_seq: int = 0


@dataclass(frozen=True)
class Outcome:
    """A final outcome for one pending record."""

    idx: int
    status: RecordStatus
    source: str = ""
    phone: str = ""
    credits: int = 0
    detail: str = ""


@dataclass(frozen=True)
class PendingRecord:
    idx: int
    person: Person
    identity: str
    dup_of: int | None
    known: bool


def create(conn: Connection, new: NewRun) -> None:
    """Insert a queued run (the caller holds the owner's credit lock)."""
    conn.execute(
        sa.insert(rt_).values(
            run_id=new.run_id,
            owner=new.owner,
            state=RunState.QUEUED.value,
            max_credits=new.max_credits,
            spent=0,
            total=new.total,
            worst_case=new.worst_case,
            result_path=new.result_path,
            credits_path=new.credits_path,
            cancel_requested=False,
            notice="",
            label=new.label[:500],
            parent_run_id=new.parent_run_id,
            group_id=new.group_id,
            group_seq=new.group_seq,
            created_at=db.utcnow(),
        )
    )


def insert_records(
    conn: Connection,
    run_id: str,
    people: Sequence[Person],
    identities: Sequence[str],
    dup_of: Sequence[int | None],
    known: Sequence[bool],
    source_rows: Sequence[dict[str, str]] | None,
) -> None:
    rows: list[dict[str, Any]] = []
    for i, person in enumerate(people):
        row: dict[str, Any] = {
            "run_id": run_id,
            "idx": i,
            "person_id": person.id,
            "identity": identities[i],
            "dup_of": dup_of[i],
            "known": known[i],
            "status": None,
            "source": "",
            "phone": "",
            "credits": 0,
            "detail": "",
            "source_row": source_rows[i] if source_rows else None,
        }
        row.update({f: getattr(person, f) for f in _PERSON_COLS})
        rows.append(row)
    for start in range(0, len(rows), 500):
        conn.execute(sa.insert(rr), rows[start : start + 500])


def get(conn: Connection, run_id: str, owner: str | None = None) -> RunRow:
    """The run, or NotFound (also when ``owner`` is given and is not the run's owner)."""
    stmt = sa.select(rt_).where(rt_.c.run_id == run_id)
    if owner is not None:
        stmt = stmt.where(rt_.c.owner == owner)
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound(f"run {run_id} not found")
    return RunRow.of(row)


def counts(conn: Connection, run_ids: Sequence[str]) -> dict[str, RunCounts]:
    out = {rid: RunCounts() for rid in run_ids}
    if not run_ids:
        return out
    stmt = (
        sa.select(rr.c.run_id, rr.c.status, sa.func.count())
        .where(rr.c.run_id.in_(list(run_ids)))
        .group_by(rr.c.run_id, rr.c.status)
    )
    for run_id, status, n in conn.execute(stmt):
        c = out[run_id]
        c.total += n
        key = "pending" if status is None else str(status)
        setattr(c, key, getattr(c, key) + n)
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


def _person(m: Any) -> Person:
    return Person(id=m["person_id"], **{f: m[f] for f in _PERSON_COLS})


def outcomes(conn: Connection, run_id: str) -> list[RecordOutcome]:
    rows = conn.execute(sa.select(rr).where(rr.c.run_id == run_id).order_by(rr.c.idx))
    return [
        RecordOutcome(
            idx=m["idx"],
            person=_person(m),
            status=RecordStatus(m["status"]) if m["status"] else None,
            source=m["source"],
            phone=m["phone"],
            credits_charged=m["credits"],
            detail=m["detail"],
            source_row=m["source_row"],
        )
        for m in (r._mapping for r in rows)
    ]


def pending(conn: Connection, run_id: str, limit: int | None = None) -> list[PendingRecord]:
    stmt = sa.select(rr).where(rr.c.run_id == run_id, rr.c.status.is_(None)).order_by(rr.c.idx)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [
        PendingRecord(
            idx=m["idx"],
            person=_person(m),
            identity=m["identity"],
            dup_of=m["dup_of"],
            known=bool(m["known"]),
        )
        for m in (r._mapping for r in conn.execute(stmt))
    ]


def resolved(conn: Connection, run_id: str, idxs: Iterable[int]) -> dict[int, Outcome]:
    wanted = sorted(set(idxs))
    out: dict[int, Outcome] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        rows = conn.execute(
            sa.select(rr.c.idx, rr.c.status, rr.c.source, rr.c.phone, rr.c.detail).where(
                rr.c.run_id == run_id, rr.c.idx.in_(part), rr.c.status.is_not(None)
            )
        )
        for idx, status, source, phone, detail in rows:
            out[idx] = Outcome(idx, RecordStatus(status), source, phone, 0, detail)
    return out


def apply(conn: Connection, run_id: str, owner: str, items: Sequence[Outcome]) -> int:
    """Write outcomes of still-pending records and their charges; returns credits charged.

    The first statement locks the run row (a write lock on SQLite), so the check of which
    records are still pending and the writes that follow cannot interleave with another
    executor settling the same records.
    """
    if not items:
        return 0
    conn.execute(sa.update(rt_).where(rt_.c.run_id == run_id).values(spent=rt_.c.spent))
    wanted = {o.idx: o for o in items}
    still_pending: set[int] = set()
    keys = sorted(wanted)
    for start in range(0, len(keys), 500):
        part = keys[start : start + 500]
        still_pending.update(
            r[0]
            for r in conn.execute(
                sa.select(rr.c.idx).where(
                    rr.c.run_id == run_id, rr.c.idx.in_(part), rr.c.status.is_(None)
                )
            )
        )
    todo = [wanted[i] for i in sorted(still_pending)]
    if not todo:
        return 0
    conn.execute(
        sa.update(rr)
        .where(rr.c.run_id == run_id, rr.c.idx == sa.bindparam("b_idx"))
        .values(
            status=sa.bindparam("b_status"),
            source=sa.bindparam("b_source"),
            phone=sa.bindparam("b_phone"),
            credits=sa.bindparam("b_credits"),
            detail=sa.bindparam("b_detail"),
        ),
        [
            {
                "b_idx": o.idx,
                "b_status": o.status.value,
                "b_source": o.source,
                "b_phone": o.phone,
                "b_credits": o.credits,
                "b_detail": o.detail,
            }
            for o in todo
        ],
    )
    charged = credits.record_charges(
        conn, owner, run_id, [Charge(o.idx, o.credits, o.source) for o in todo if o.credits > 0]
    )
    if charged:
        conn.execute(
            sa.update(rt_).where(rt_.c.run_id == run_id).values(spent=rt_.c.spent + charged)
        )
    return charged


def close_pending(conn: Connection, run_id: str, detail: Detail) -> None:
    """Every record still pending becomes not_processed with ``detail`` (no charge)."""
    conn.execute(
        sa.update(rr)
        .where(rr.c.run_id == run_id, rr.c.status.is_(None))
        .values(status=RecordStatus.NOT_PROCESSED.value, detail=detail.value)
    )


def credit_limit_hit(conn: Connection, run_id: str) -> bool:
    hit = conn.execute(
        sa.select(rr.c.idx)
        .where(rr.c.run_id == run_id, rr.c.detail == Detail.CREDIT_LIMIT.value)
        .limit(1)
    ).first()
    return hit is not None


def _next_in_group(conn: Connection, row: RunRow) -> str | None:
    if not row.group_id:
        return None
    nxt = conn.execute(
        sa.select(rt_.c.run_id).where(
            rt_.c.group_id == row.group_id, rt_.c.group_seq == row.group_seq + 1
        )
    ).first()
    return str(nxt[0]) if nxt else None


def start(conn: Connection, run_id: str) -> RunRow:
    """queued -> running (a no-op for a run already running or final); the run after."""
    conn.execute(
        sa.update(rt_)
        .where(rt_.c.run_id == run_id, rt_.c.state == RunState.QUEUED.value)
        .values(state=RunState.RUNNING.value, started_at=db.utcnow())
    )
    return get(conn, run_id)


def cancel_requested(conn: Connection, run_id: str) -> bool:
    return bool(
        conn.execute(sa.select(rt_.c.cancel_requested).where(rt_.c.run_id == run_id)).scalar()
    )


def request_cancel(conn: Connection, row: RunRow) -> None:
    """Ask the run, and the later parts of its upload, to stop (active ones only)."""
    targets = [row.run_id]
    if row.group_id:
        targets += [
            str(r[0])
            for r in conn.execute(
                sa.select(rt_.c.run_id).where(
                    rt_.c.group_id == row.group_id, rt_.c.group_seq > row.group_seq
                )
            )
        ]
    conn.execute(
        sa.update(rt_)
        .where(rt_.c.run_id.in_(targets), rt_.c.state.in_(credits.ACTIVE_STATES))
        .values(cancel_requested=True)
    )


def record_disabled_sources(conn: Connection, run_id: str, disabled: dict[str, str]) -> None:
    """Sources stopped for the rest of the run (e.g. 401/402), and the notice shown."""
    notice = "; ".join(f"{name} stopped for this run: {why}" for name, why in disabled.items())
    conn.execute(
        sa.update(rt_)
        .where(rt_.c.run_id == run_id)
        .values(disabled_sources=disabled, notice=notice[:1000])
    )


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


def finish(conn: Connection, run_id: str, state: RunState) -> str | None:
    """Mark the run final; pass its unspent budget to the next run of its group, if any.

    Returns the next run's id when there is one still waiting to start.
    """
    row = get(conn, run_id)
    if row.state.finished:
        return None
    conn.execute(
        sa.update(rt_)
        .where(rt_.c.run_id == run_id)
        .values(state=state.value, finished_at=db.utcnow())
    )
    nxt = _next_in_group(conn, row)
    if nxt is None:
        return None
    conn.execute(
        sa.update(rt_)
        .where(rt_.c.run_id == nxt, rt_.c.state.in_(credits.ACTIVE_STATES))
        .values(max_credits=rt_.c.max_credits + max(0, row.budget_left))
    )
    return nxt


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
