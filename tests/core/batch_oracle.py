"""The reference the batch read model is checked against: every row's newest outcome,
computed in Python from all the batch's records at once (the product never reads a whole
batch: its pages, counts and files go through ``batch_views``' SQL, a window or a page at
a time)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from phone_core import batch_views, db
from phone_core.models import RecordOutcome
from phone_core.run_views import outcome_of
from phone_core.runs import RunRow
from phone_core.runtime import Runtime


def current(
    conn: Connection, rows: Sequence[RunRow], *, settled_only: bool = False
) -> list[RecordOutcome]:
    """Each upload row's newest outcome over ``rows`` (a later submission wins), in upload
    order; ``settled_only`` skips pending records (the older outcome shows until then).
    The outcome's ``idx`` is the row in the upload."""
    order = [r.run_id for sub in batch_views.submissions(rows) for r in sub]
    rank = {run_id: i for i, run_id in enumerate(order)}
    rr = db.run_records
    stmt = sa.select(rr).where(rr.c.run_id.in_(order))
    if settled_only:
        stmt = stmt.where(rr.c.status.is_not(None))
    best: dict[int, tuple[int, RecordOutcome]] = {}
    for m in (r._mapping for r in conn.execute(stmt)):
        row = int(m["batch_row"] if m["batch_row"] is not None else m["idx"])
        held = best.get(row)
        if held is None or held[0] <= rank[str(m["run_id"])]:
            best[row] = (rank[str(m["run_id"])], outcome_of(m, row))
    return [best[k][1] for k in sorted(best)]


def batch_outcomes(
    rt: Runtime, user: str, batch_id: str, *, settled_only: bool = True
) -> list[RecordOutcome]:
    """The user's batch (NotFound for another user's), its rows' newest outcomes."""
    with rt.db.connect() as conn:
        rows = batch_views.batch_rows(conn, batch_id, user)
        return current(conn, rows, settled_only=settled_only)
