"""Runs and their records in the state DB: the only module that writes ``runs`` and
``run_records``. Create, start, settle, cancel, finish; rows come back as ``RunRow``.

Every record write is conditional on the record still being pending, and its charge is
written in the same transaction with a unique (run, record) key: a wave that runs twice
(crash and recovery, or two executors racing) can never charge a record twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
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
    RecordStatus,
    RunState,
)

rr = db.run_records
rt_ = db.runs
_PERSON_COLS = PERSON_FIELDS[1:]
_RECORD_COLUMNS = (
    "run_id", "idx", "person_id", "identity", "dup_of", "known", "status", "source", "phone",
    "credits", "detail", "source_row", "batch_row", *_PERSON_COLS,
)  # fmt: skip


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
    source_delimiter: str | None = None
    batch_id: str = ""
    outputs_deleted_at: datetime | None = None  # the retention purge deleted its files
    sources: tuple[str, ...] | None = None  # the batch's chosen sources; None: the waterfall

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
            source_delimiter=m["source_delimiter"],
            batch_id=str(m["batch_id"] or m["group_id"] or m["run_id"]),
            outputs_deleted_at=m.get("outputs_deleted_at"),
            sources=None if m["sources"] is None else tuple(str(x) for x in m["sources"]),
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
    source_delimiter: str | None = None  # the uploaded CSV's, for the exports
    batch_id: str | None = None  # default: the group, or the run itself
    sources: Sequence[str] | None = None  # the sources the batch chose; None: the waterfall


@dataclass(frozen=True)
class Outcome:
    """A final outcome for one pending record."""

    idx: int
    status: RecordStatus
    source: str = ""
    phone: str = ""
    credits: int = 0
    detail: str = ""
    dnc_list: str = ""  # suppression lists its phone or person is on (flag mode)


@dataclass(frozen=True)
class PendingRecord:
    idx: int
    person: Person
    identity: str
    dup_of: int | None
    known: bool


def create(conn: Connection, new: NewRun) -> None:
    """Insert a queued run (the caller holds the owner's credit lock)."""
    create_many(conn, [new])


def create_many(conn: Connection, new: Sequence[NewRun]) -> None:
    """Insert queued runs in one statement (the caller holds the owner's credit lock); their
    ``created_at`` grow by a microsecond each, so the parts of a batch keep their order."""
    now = db.utcnow()
    conn.execute(
        sa.insert(rt_),
        [
            {
                "run_id": n.run_id,
                "owner": n.owner,
                "state": RunState.QUEUED.value,
                "max_credits": n.max_credits,
                "spent": 0,
                "total": n.total,
                "worst_case": n.worst_case,
                "result_path": n.result_path,
                "credits_path": n.credits_path,
                "cancel_requested": False,
                "notice": "",
                "label": n.label[:500],
                "parent_run_id": n.parent_run_id,
                "group_id": n.group_id,
                "group_seq": n.group_seq,
                "batch_id": n.batch_id or n.group_id or n.run_id,
                "created_at": now + timedelta(microseconds=seq),
                "source_delimiter": n.source_delimiter,
                "sources": None if n.sources is None else list(n.sources),
            }
            for seq, n in enumerate(new)
        ],
    )


def insert_records(
    conn: Connection,
    run_id: str,
    people: Sequence[Person],
    identities: Sequence[str],
    dup_of: Sequence[int | None],
    known: Sequence[bool],
    source_rows: Sequence[dict[str, str]] | None,
    batch_rows: Sequence[int] | None = None,
) -> None:
    """The run's records; ``batch_rows`` are their rows in the batch's upload (default:
    their position in the run)."""
    rows = [
        (
            run_id, i, person.id, identities[i], dup_of[i], known[i], None, "", "", 0, "",
            json.dumps(source_rows[i], ensure_ascii=False) if source_rows else None,
            batch_rows[i] if batch_rows is not None else i,
            *(getattr(person, f) for f in _PERSON_COLS),
        )
        for i, person in enumerate(people)
    ]  # fmt: skip
    db.bulk_insert(conn, rr, _RECORD_COLUMNS, rows)


def get(conn: Connection, run_id: str, owner: str | None = None) -> RunRow:
    """The run, or NotFound (also when ``owner`` is given and is not the run's owner)."""
    stmt = sa.select(rt_).where(rt_.c.run_id == run_id)
    if owner is not None:
        stmt = stmt.where(rt_.c.owner == owner)
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound(f"run {run_id} not found")
    return RunRow.of(row)


def person_of(m: Any) -> Person:
    """The person of a ``run_records`` row."""
    return Person(id=m["person_id"], **{f: m[f] for f in _PERSON_COLS})


def pending(conn: Connection, run_id: str, limit: int | None = None) -> list[PendingRecord]:
    stmt = sa.select(rr).where(rr.c.run_id == run_id, rr.c.status.is_(None)).order_by(rr.c.idx)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [
        PendingRecord(
            idx=m["idx"],
            person=person_of(m),
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


_APPLY_CHUNK = 500  # outcomes a statement (7 parameters each, far below SQLite's limit)
_SETTLE_COLUMNS = ("idx", "status", "source", "phone", "credits", "detail", "dnc_list")


def _settle_pending(conn: Connection, run_id: str, part: Sequence[Outcome]) -> list[int]:
    """Write the outcomes of those records of ``part`` still pending, in one statement
    (UPDATE ... FROM a VALUES list: PostgreSQL, SQLite >= 3.35); their indexes."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    row = "(" + ", ".join([mark] * len(_SETTLE_COLUMNS)) + ")"
    sets = ", ".join(f"{c} = v.{c}" for c in _SETTLE_COLUMNS[1:])
    sql = (
        f"WITH v({', '.join(_SETTLE_COLUMNS)}) AS (VALUES {', '.join([row] * len(part))}) "
        f"UPDATE run_records SET {sets} FROM v WHERE run_records.run_id = {mark} "
        "AND run_records.idx = v.idx AND run_records.status IS NULL RETURNING run_records.idx"
    )
    params: list[object] = []
    for o in part:
        params += [o.idx, o.status.value, o.source, o.phone, o.credits, o.detail, o.dnc_list]
    params.append(run_id)
    return [int(r[0]) for r in conn.exec_driver_sql(sql, tuple(params))]


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
    keys = sorted(wanted)
    done: list[int] = []
    for start in range(0, len(keys), _APPLY_CHUNK):
        done += _settle_pending(
            conn, run_id, [wanted[i] for i in keys[start : start + _APPLY_CHUNK]]
        )
    todo = [wanted[i] for i in sorted(done)]
    if not todo:
        return 0
    charged = credits.record_charges(
        conn, owner, run_id, [Charge(o.idx, o.credits, o.source) for o in todo if o.credits > 0]
    )
    if charged:
        conn.execute(
            sa.update(rt_).where(rt_.c.run_id == run_id).values(spent=rt_.c.spent + charged)
        )
    return charged


def mark_dnc(conn: Connection, run_id: str, marks: dict[int, str]) -> int:
    """Set the suppression lists of settled records (a re-check of a past run): only
    ``dnc_list`` changes; status, phone and charge stay. Returns rows changed."""
    changed = 0
    for idx, names in sorted(marks.items()):
        changed += int(
            conn.execute(
                sa.update(rr)
                .where(rr.c.run_id == run_id, rr.c.idx == idx, rr.c.dnc_list != names[:200])
                .values(dnc_list=names[:200])
            ).rowcount
            or 0
        )
    return changed


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


def request_cancel_batch(conn: Connection, batch_id: str, owner: str | None = None) -> int:
    """Ask every unfinished run of a batch to stop; how many were asked."""
    stmt = sa.update(rt_).where(rt_.c.batch_id == batch_id, rt_.c.state.in_(credits.ACTIVE_STATES))
    if owner is not None:
        stmt = stmt.where(rt_.c.owner == owner)
    return int(conn.execute(stmt.values(cancel_requested=True)).rowcount or 0)


def record_disabled_sources(conn: Connection, run_id: str, disabled: dict[str, str]) -> None:
    """Sources stopped for the rest of the run (e.g. 401/402), and the notice shown."""
    notice = "; ".join(f"{name} stopped for this run: {why}" for name, why in disabled.items())
    conn.execute(
        sa.update(rt_)
        .where(rt_.c.run_id == run_id)
        .values(disabled_sources=disabled, notice=notice[:1000])
    )


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


# --- retention and erasure (issue 13) ------------------------------------------------------

ERASED = "erased"  # the detail of a record erased on request


def redact_records(
    conn: Connection, run_id: str, idxs: Sequence[int] | None = None, *, detail: str | None = None
) -> int:
    """Blank the personal fields of the run's records (all, or those at ``idxs``): person
    fields, identity, phone, and the values of the uploaded row (its column names stay, so
    the run's files keep their shape). Id, status, source, credits and the ledger stay:
    credits still reconcile. ``detail`` replaces the detail (e.g. ``erased``); then a
    record still pending is closed as skipped (nothing left to look up). Idempotent;
    returns how many records were redacted."""
    stmt = sa.select(rr.c.idx, rr.c.source_row).where(rr.c.run_id == run_id)
    if idxs is not None:
        if not idxs:
            return 0
        stmt = stmt.where(rr.c.idx.in_(sorted(set(idxs))))
    found = conn.execute(stmt).all()
    if not found:
        return 0
    blank: dict[str, Any] = {c: "" for c in _PERSON_COLS}
    blank.update(identity="", phone="")
    if detail is not None:
        blank["detail"] = detail[:200]
        # A record not processed yet never will be: it is closed as skipped, free.
        conn.execute(
            sa.update(rr)
            .where(
                rr.c.run_id == run_id,
                rr.c.idx.in_([idx for idx, _ in found]),
                rr.c.status.is_(None),
            )
            .values(status=RecordStatus.SKIPPED.value, credits=0)
        )
    params = [
        {
            "r_idx": idx,
            "r_source_row": {str(k): "" for k in src} if isinstance(src, dict) else None,
        }
        for idx, src in found
    ]
    conn.execute(
        sa.update(rr)
        .where(rr.c.run_id == run_id, rr.c.idx == sa.bindparam("r_idx"))
        .values(**blank, source_row=sa.bindparam("r_source_row", type_=rr.c.source_row.type)),
        params,
    )
    return len(found)


def mark_records_redacted(conn: Connection, run_id: str, at: datetime) -> None:
    conn.execute(sa.update(rt_).where(rt_.c.run_id == run_id).values(records_redacted_at=at))


def mark_outputs_deleted(conn: Connection, run_id: str, at: datetime) -> None:
    conn.execute(sa.update(rt_).where(rt_.c.run_id == run_id).values(outputs_deleted_at=at))
