"""Retention (issue 13): personal data is kept as long as the policy says, then removed.

The policy is three settings (``PHONE_RETAIN_OUTPUTS_DAYS``, ``..._RECORDS_DAYS``,
``..._PERSONS_DAYS``; unset: kept). ``purge`` applies it as of ``now`` (a parameter, so
tests pass a fake clock; the durable daily job passes its scheduled time):

- a finished run's stored files (results.csv, credits.csv, the enriched exports) are
  deleted once the run finished more than the outputs' days ago, and at the latest when
  its records are redacted (files would otherwise keep what the records no longer do);
  a batch's merged files go when every run of the batch has had its files deleted;
- a finished run's records have their personal fields redacted after the records' days
  (``runs.redact_records``: ids, statuses, sources, credits and the ledger are kept, so
  balances and usage still reconcile);
- each user's person store loses the people not given again for the persons' days;
- cache entries past the cache's time to live (never served again) are removed;
- not personal, but growing with every lookup: the sources' measurements older than
  ``PHONE_RETAIN_SOURCE_CALLS_DAYS`` (400) and the async vendor jobs of runs finished
  more than two days ago are removed.

Each run is its own transaction and is marked when done, so a purge cut short is simply
completed by the next one. Each purge is recorded in ``purges`` (when, the policy, the
counts), which this module alone writes; the admin page shows the last one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from phone_core import audit_hook, batch_files, batch_views, db, persons, runs, source_stats
from phone_core.models import OUTPUT_FILES
from phone_core.runtime import Runtime
from phone_core.settings import Settings
from phone_core.sources import cache, vendor_jobs
from phone_core.storage import output_key

log = logging.getLogger(__name__)
SYSTEM = "system"  # the actor of the scheduled purge
pt = db.purges


@dataclass(frozen=True)
class Policy:
    """Days each kind of personal data is kept (None: kept)."""

    outputs_days: int | None
    records_days: int | None
    persons_days: int | None
    cache_ttl_days: int
    source_calls_days: int = 400

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(
            settings.retain_outputs_days,
            settings.retain_records_days,
            settings.retain_persons_days,
            settings.cache_ttl_days,
            settings.retain_source_calls_days,
        )

    @property
    def effective_outputs_days(self) -> int | None:
        """A run's files go at the latest with its records' personal fields."""
        days = [d for d in (self.outputs_days, self.records_days) if d is not None]
        return min(days) if days else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "outputs_days": self.outputs_days,
            "records_days": self.records_days,
            "persons_days": self.persons_days,
            "cache_ttl_days": self.cache_ttl_days,
            "source_calls_days": self.source_calls_days,
        }


@dataclass(frozen=True)
class Purge:
    """One purge, as the admin page shows it."""

    id: int
    trigger: str
    as_of: datetime
    policy: dict[str, Any]
    counts: dict[str, int]
    started_at: datetime
    finished_at: datetime | None


def _expired(conn: Connection, column: sa.Column[Any], before: datetime) -> list[str]:
    r = db.runs
    rows = conn.execute(
        sa.select(r.c.run_id)
        .where(r.c.finished_at.is_not(None), r.c.finished_at < before, column.is_(None))
        .order_by(r.c.finished_at)
    )
    return [str(x) for (x,) in rows]


def _run_keys(rt: Runtime, row: runs.RunRow) -> list[str]:
    return [output_key(rt.store, row.result_path, name) for name in OUTPUT_FILES]


def _delete_outputs(rt: Runtime, before: datetime, now: datetime) -> tuple[int, int]:
    """(runs whose files were deleted, objects deleted)."""
    with rt.db.connect() as conn:
        ids = _expired(conn, db.runs.c.outputs_deleted_at, before)
    deleted = 0
    batches: set[str] = set()
    for run_id in ids:
        with rt.db.connect() as conn:
            row = runs.get(conn, run_id)
        deleted += sum(rt.store.delete(key) for key in _run_keys(rt, row))
        with rt.db.begin() as conn:
            runs.mark_outputs_deleted(conn, run_id, now)
        batches.add(row.batch_id)
    for batch_id in sorted(batches):
        with rt.db.connect() as conn:
            rows = batch_views.batch_rows(conn, batch_id)
        if rows and all(r.outputs_deleted_at is not None for r in rows):
            deleted += sum(rt.store.delete(key) for key in batch_files.keys(rt, rows))
    return len(ids), deleted


def _redact_records(rt: Runtime, before: datetime, now: datetime) -> tuple[int, int]:
    """(runs whose records were redacted, records redacted)."""
    with rt.db.connect() as conn:
        ids = _expired(conn, db.runs.c.records_redacted_at, before)
    records = 0
    for run_id in ids:
        with rt.db.begin() as conn:
            records += runs.redact_records(conn, run_id)
            runs.mark_records_redacted(conn, run_id, now)
    return len(ids), records


def purge(
    rt: Runtime, *, now: datetime | None = None, trigger: str = "admin", actor: str = SYSTEM
) -> dict[str, int]:
    """Apply the retention policy as of ``now`` (naive UTC; default: the clock). Idempotent:
    what is already gone is not counted again. Returns the counts (also recorded)."""
    now = now or db.utcnow()
    policy = Policy.of(rt.settings)
    with rt.db.begin() as conn:
        inserted = conn.execute(
            sa.insert(pt).values(
                trigger=trigger[:20],
                as_of=now,
                policy=policy.as_dict(),
                counts={},
                started_at=db.utcnow(),
            )
        )
        purge_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
    counts = {
        "runs_files_deleted": 0,
        "objects_deleted": 0,
        "runs_records_redacted": 0,
        "records_redacted": 0,
        "persons_deleted": 0,
        "cache_entries_deleted": 0,
        "source_calls_deleted": 0,
        "vendor_jobs_deleted": 0,
    }
    days = policy.effective_outputs_days
    if days is not None:
        counts["runs_files_deleted"], counts["objects_deleted"] = _delete_outputs(
            rt, now - timedelta(days=days), now
        )
    if policy.records_days is not None:
        counts["runs_records_redacted"], counts["records_redacted"] = _redact_records(
            rt, now - timedelta(days=policy.records_days), now
        )
    with rt.db.begin() as conn:
        if policy.persons_days is not None:
            before = now - timedelta(days=policy.persons_days)
            counts["persons_deleted"] = persons.delete_older(conn, before)
        counts["cache_entries_deleted"] = cache.purge_older(conn, policy.cache_ttl_days, now)
        before = now - timedelta(days=policy.source_calls_days)
        counts["source_calls_deleted"] = source_stats.purge_older(conn, before)
        counts["vendor_jobs_deleted"] = vendor_jobs.purge_finished(conn, now)
        conn.execute(
            sa.update(pt).where(pt.c.id == purge_id).values(counts=counts, finished_at=db.utcnow())
        )
    log.info("retention purge %s (%s): %s", purge_id, trigger, counts)
    audit_hook.record(
        rt.db, actor=actor, action=audit_hook.PURGE, target=f"purge:{purge_id}", detail=counts
    )
    return counts


def _purge_of(m: Any) -> Purge:
    return Purge(
        id=int(m["id"]),
        trigger=str(m["trigger"]),
        as_of=m["as_of"],
        policy=dict(m["policy"] or {}),
        counts={str(k): int(v) for k, v in dict(m["counts"] or {}).items()},
        started_at=m["started_at"],
        finished_at=m["finished_at"],
    )


def last_purges(conn: Connection, limit: int = 10) -> list[Purge]:
    """The latest purges, newest first (one not finished was cut short)."""
    rows = conn.execute(sa.select(pt).order_by(pt.c.id.desc()).limit(limit))
    return [_purge_of(r._mapping) for r in rows]
