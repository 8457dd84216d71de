"""Durable checkpoints of async vendor jobs (the only writer of ``vendor_jobs`` and
``vendor_job_records``).

A job's life, each step committed before the next network call:

1. ``begin``: the job row (state ``submitting``, a ``job_key`` hashed from the source,
   the run and the sorted record ids) and one row per record (source, run, record) ->
   job_key, in one transaction, BEFORE the submit is sent;
2. ``submitted``: the vendor's job id, stored as soon as the submit answers and BEFORE
   the first poll; from here on a restarted worker polls this job;
3. ``finish``: ``done`` (results read; kept, so that a crash between reading the results
   and committing the records re-reads the same job instead of submitting again) or
   ``failed`` with a detail (the vendor cancelled it, it expired...);
4. ``drop``: the submit surely did not create a job at the vendor (refused, 4xx): the
   rows go, the records may be submitted again later in the run.

A job found in ``submitting`` after a restart was sent or not: nobody can tell (the
vendor offers no idempotency key), so it is never re-sent; its records end as
``upstream_job_unknown`` (``abandon``). The records of a run are keyed by (source, run,
record id): a crash can re-form the engine's chunks differently (committed records drop
out of the pending list), so resuming works per record, not per chunk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from phone_core import db

SUBMITTING = "submitting"
SUBMITTED = "submitted"
DONE = "done"
FAILED = "failed"
ABANDONED = "abandoned"

_CHUNK = 500


@dataclass(frozen=True)
class Job:
    job_key: str
    source: str
    run_id: str
    vendor_job_id: str | None
    state: str
    detail: str


def job_key(source: str, run_id: str, record_ids: Sequence[str]) -> str:
    """The key of a job: the same source, run and records give the same key."""
    text = "\x1f".join([source, run_id, *sorted(record_ids)])
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _job(row: Any) -> Job:
    return Job(row[0], row[1], row[2], row[3], row[4], row[5])


_COLS = (
    db.vendor_jobs.c.job_key,
    db.vendor_jobs.c.source,
    db.vendor_jobs.c.run_id,
    db.vendor_jobs.c.vendor_job_id,
    db.vendor_jobs.c.state,
    db.vendor_jobs.c.detail,
)


def find(engine: Engine, source: str, run_id: str, record_ids: Sequence[str]) -> dict[str, Job]:
    """record_id -> the job it went into, for records of this run already sent to a job."""
    jr = db.vendor_job_records
    out: dict[str, Job] = {}
    wanted = sorted(set(record_ids))
    with engine.connect() as conn:
        for start in range(0, len(wanted), _CHUNK):
            part = wanted[start : start + _CHUNK]
            rows = conn.execute(
                sa.select(jr.c.record_id, *_COLS)
                .join(db.vendor_jobs, db.vendor_jobs.c.job_key == jr.c.job_key)
                .where(jr.c.source == source, jr.c.run_id == run_id, jr.c.record_id.in_(part))
            )
            for row in rows:
                out[row[0]] = Job(row[1], row[2], row[3], row[4], row[5], row[6])
    return out


def begin(engine: Engine, source: str, run_id: str, record_ids: Sequence[str]) -> Job:
    """Write the job (``submitting``) and its records, before anything is sent."""
    key = job_key(source, run_id, record_ids)
    now = db.utcnow()
    with engine.begin() as conn:
        conn.execute(
            sa.insert(db.vendor_jobs).values(
                job_key=key,
                source=source,
                run_id=run_id,
                vendor_job_id=None,
                state=SUBMITTING,
                detail="",
                records=len(record_ids),
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            sa.insert(db.vendor_job_records),
            [
                {"source": source, "run_id": run_id, "record_id": rid, "job_key": key}
                for rid in record_ids
            ],
        )
    return Job(key, source, run_id, None, SUBMITTING, "")


def submitted(engine: Engine, key: str, vendor_job_id: str) -> None:
    """The checkpoint: the vendor's job id, before the first poll."""
    with engine.begin() as conn:
        conn.execute(
            sa.update(db.vendor_jobs)
            .where(db.vendor_jobs.c.job_key == key)
            .values(vendor_job_id=vendor_job_id, state=SUBMITTED, updated_at=db.utcnow())
        )


def finish(engine: Engine, key: str, state: str, detail: str = "") -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(db.vendor_jobs)
            .where(db.vendor_jobs.c.job_key == key)
            .values(state=state, detail=detail, updated_at=db.utcnow())
        )


def abandon(engine: Engine, key: str) -> None:
    """A job left in ``submitting`` by a crash: never re-sent."""
    finish(engine, key, ABANDONED, "upstream_job_unknown")


def drop(engine: Engine, key: str) -> None:
    """The vendor surely created no job: forget it, so its records may be sent again."""
    with engine.begin() as conn:
        conn.execute(sa.delete(db.vendor_job_records).where(db.vendor_job_records.c.job_key == key))
        conn.execute(sa.delete(db.vendor_jobs).where(db.vendor_jobs.c.job_key == key))


# A finished run's jobs are kept this long (a late look at what a vendor was sent), then
# the retention purge removes them: a job is only used while its run is processed.
KEEP_AFTER_RUN = timedelta(days=2)


def purge_finished(conn: Connection, now: datetime) -> int:
    """Remove the jobs (and their record links) not touched for ``KEEP_AFTER_RUN`` whose
    run is not unfinished (finished, gone, or a single-record call's): how many."""
    jobs, r = db.vendor_jobs, db.runs
    running = sa.exists().where(r.c.run_id == jobs.c.run_id, r.c.finished_at.is_(None))
    stale = sa.select(jobs.c.job_key).where(jobs.c.updated_at < now - KEEP_AFTER_RUN, ~running)
    keys = [str(k) for (k,) in conn.execute(stale)]
    for start in range(0, len(keys), _CHUNK):
        part = keys[start : start + _CHUNK]
        jr = db.vendor_job_records
        conn.execute(sa.delete(jr).where(jr.c.job_key.in_(part)))
        conn.execute(sa.delete(jobs).where(jobs.c.job_key.in_(part)))
    return len(keys)


def get(engine: Engine, key: str) -> Job | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(*_COLS).where(db.vendor_jobs.c.job_key == key)).first()
    return _job(row) if row is not None else None


def jobs_of(engine: Engine, source: str, run_id: str) -> list[Job]:
    """Every job of a run at a source (tests, diagnostics)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*_COLS)
            .where(db.vendor_jobs.c.source == source, db.vendor_jobs.c.run_id == run_id)
            .order_by(db.vendor_jobs.c.created_at)
        )
        return [_job(r) for r in rows]
