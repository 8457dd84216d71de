"""Runs and their records in the state DB: create (with the credit hold), read, finalise.

Every record write is conditional on the record still being pending, and its charge is
written in the same transaction with a unique (run, record) key: a wave that runs twice
(crash and recovery, or two executors racing) can never charge a record twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from phone_core import credits, db
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
_PERSON_COLS = PERSON_FIELDS[1:]


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


def get_row(conn: Connection, run_id: str, owner: str | None = None) -> sa.Row[Any]:
    stmt = sa.select(db.runs).where(db.runs.c.run_id == run_id)
    if owner is not None:
        stmt = stmt.where(db.runs.c.owner == owner)
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound(f"run {run_id} not found")
    return row


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


def to_model(row: sa.Row[Any], run_counts: RunCounts) -> Run:
    m = row._mapping
    state = RunState(m["state"])
    return Run(
        run_id=m["run_id"],
        owner=m["owner"],
        state=state,
        max_credits=m["max_credits"],
        credits_spent=m["spent"],
        credits_held=0 if state.finished else max(0, m["max_credits"] - m["spent"]),
        counts=run_counts,
        result_path=m["result_path"],
        credits_csv_path=m["credits_path"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        cancel_requested=bool(m["cancel_requested"]),
        notice=m["notice"] or "",
        label=m["label"] or "",
        parent_run_id=m["parent_run_id"],
    )


def load_run(conn: Connection, run_id: str, owner: str | None = None) -> Run:
    row = get_row(conn, run_id, owner)
    return to_model(row, counts(conn, [run_id])[run_id])


def list_runs(conn: Connection, owner: str | None = None, limit: int = 200) -> list[Run]:
    stmt = sa.select(db.runs).order_by(db.runs.c.created_at.desc()).limit(limit)
    if owner is not None:
        stmt = stmt.where(db.runs.c.owner == owner)
    rows = list(conn.execute(stmt))
    by_run = counts(conn, [r._mapping["run_id"] for r in rows])
    return [to_model(r, by_run[r._mapping["run_id"]]) for r in rows]


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
    runs_t = db.runs
    conn.execute(sa.update(runs_t).where(runs_t.c.run_id == run_id).values(spent=runs_t.c.spent))
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
    now = db.utcnow()
    charges = [
        {
            "user": owner,
            "kind": "charge",
            "amount": o.credits,
            "run_id": run_id,
            "record_idx": o.idx,
            "source": o.source,
            "note": "",
            "created_at": now,
        }
        for o in todo
        if o.credits > 0
    ]
    if charges:
        conn.execute(sa.insert(db.ledger), charges)
    charged = sum(c["amount"] for c in charges)  # type: ignore[misc]
    if charged:
        conn.execute(
            sa.update(runs_t)
            .where(runs_t.c.run_id == run_id)
            .values(spent=runs_t.c.spent + charged)
        )
    return int(charged)


def close_pending(conn: Connection, run_id: str, owner: str, detail: Detail) -> None:
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


def next_in_group(conn: Connection, row: sa.Row[Any]) -> str | None:
    m = row._mapping
    if not m["group_id"]:
        return None
    nxt = conn.execute(
        sa.select(db.runs.c.run_id).where(
            db.runs.c.group_id == m["group_id"], db.runs.c.group_seq == m["group_seq"] + 1
        )
    ).first()
    return str(nxt[0]) if nxt else None


def finish(conn: Connection, run_id: str, state: RunState) -> str | None:
    """Mark the run final; pass its unspent budget to the next run of its group, if any.

    Returns the next run's id when there is one still waiting to start.
    """
    row = get_row(conn, run_id)
    if RunState(row._mapping["state"]).finished:
        return None
    conn.execute(
        sa.update(db.runs)
        .where(db.runs.c.run_id == run_id)
        .values(state=state.value, finished_at=db.utcnow())
    )
    nxt = next_in_group(conn, row)
    if nxt is None:
        return None
    leftover = max(0, row._mapping["max_credits"] - row._mapping["spent"])
    conn.execute(
        sa.update(db.runs)
        .where(db.runs.c.run_id == nxt, db.runs.c.state.in_(credits.ACTIVE_STATES))
        .values(max_credits=db.runs.c.max_credits + leftover)
    )
    return nxt
