"""Batches for the web app: list, read, cancel, re-run and download an upload as one
thing (its parts and re-runs combined by ``batch_views``; merged files by ``batch_files``).

Ownership as for runs: every function takes the acting ``user`` and only touches that
user's batches; ``admin=True`` lifts that for reading and cancelling, never for spending.
The HTTP API stays per run (``service``).
"""

from __future__ import annotations

from phone_core import batch_files, batch_views, runs
from phone_core.errors import InputError
from phone_core.models import Batch, BatchAccepted, RecordOutcome
from phone_core.runtime import Runtime
from phone_core.service import rerun_items


def list_batches(
    rt: Runtime, user: str, *, admin: bool = False, owner: str | None = None
) -> list[Batch]:
    """Newest first: the user's (an admin's pick: everyone's, or ``owner``'s)."""
    with rt.db.connect() as conn:
        return batch_views.load_batches(conn, owner if admin else user)


def get_batch(rt: Runtime, user: str, batch_id: str, *, admin: bool = False) -> Batch:
    with rt.db.connect() as conn:
        return batch_views.load_batch(conn, batch_id, None if admin else user)


def batch_of_run(rt: Runtime, user: str, run_id: str, *, admin: bool = False) -> str:
    with rt.db.connect() as conn:
        return batch_views.batch_of_run(conn, run_id, None if admin else user)


def cancel_batch(rt: Runtime, user: str, batch_id: str, *, admin: bool = False) -> Batch:
    """Ask every unfinished run of the batch to stop; queued ones stop at once."""
    with rt.db.begin() as conn:
        batch_views.batch_rows(conn, batch_id, None if admin else user)
        runs.request_cancel_batch(conn, batch_id, None if admin else user)
    return get_batch(rt, user, batch_id, admin=admin)


def _batch_rerunnable(
    rt: Runtime, user: str, batch_id: str
) -> tuple[list[runs.RunRow], list[RecordOutcome]]:
    with rt.db.connect() as conn:
        rows = batch_views.batch_rows(conn, batch_id, user)
        items = batch_views.current_failed(conn, rows)
    return rows, items


def batch_rerunnable_count(rt: Runtime, user: str, batch_id: str) -> int:
    """The rows a re-run of the user's batch would send, counted in the database."""
    with rt.db.connect() as conn:
        rows = batch_views.batch_rows(conn, batch_id, user)
        return batch_views.count_current_failed(conn, rows)


def rerun_batch(rt: Runtime, user: str, batch_id: str, max_credits: int) -> list[BatchAccepted]:
    """New run(s) in the batch over its rows whose newest outcome is an error or not
    processed; when they finish, the batch's merged files get a new version."""
    rows, items = _batch_rerunnable(rt, user, batch_id)
    if not all(r.state.finished for r in rows):
        raise InputError("wait for the batch to finish before re-running its failed rows")
    if not items:
        raise InputError("this batch has no failed or unprocessed rows to re-run")
    label = batch_views.label_of(rows)
    return rerun_items(rt, user, rows[-1], items, [o.idx for o in items], max_credits, label)


def download_batch(
    rt: Runtime, user: str, batch_id: str, name: str, version: int, *, admin: bool = False
) -> bytes:
    """Version ``version`` of the batch's merged file ``name`` (stored once written)."""
    with rt.db.connect() as conn:
        rows = batch_views.batch_rows(conn, batch_id, None if admin else user)
    return batch_files.read(rt, rows, version, name)
