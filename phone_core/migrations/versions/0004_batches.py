"""Batches (issue 10): every run belongs to a batch; every record knows its upload row.

Revision ID: 0004_batches
Revises: 0005_notifications (0004 was written beside 0005; they apply in this order)
A batch is one upload: its parts (one run per 1,000 rows) and its re-runs share
``runs.batch_id``; ``run_records.batch_row`` is the record's row in the upload, so the
batch's merged files keep the upload's order and each row's newest outcome.

Backfill: a run's batch is its upload group, or the run itself; a re-run's is its
parent's. A record's row is ``group_seq * 1000 + idx`` (parts were cut at 1,000 rows); a
re-run's records map, in order, to the rows of its parent that it re-ran (errors and not
processed, but unknown ids).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_batches"
down_revision = "0005_notifications"
branch_labels = None
depends_on = None

PART_ROWS = 1000  # MAX_BATCH when parts were cut: the backfill must not follow a change
RERUN_STATUSES = ("error", "not_processed")
UNKNOWN_ID = "unknown_id"


def upgrade() -> None:
    # 0001 creates its tables from today's metadata, so a fresh database already has
    # these columns: add only what is missing (an upgraded version-1/2 database).
    conn = op.get_bind()
    inspector = sa.inspect(conn)
    run_cols = {c["name"] for c in inspector.get_columns("runs")}
    run_indexes = {i["name"] for i in inspector.get_indexes("runs")}
    record_cols = {c["name"] for c in inspector.get_columns("run_records")}
    if "batch_id" not in run_cols or "ix_runs_batch_id" not in run_indexes:
        with op.batch_alter_table("runs") as batch:
            if "batch_id" not in run_cols:
                batch.add_column(sa.Column("batch_id", sa.String(64), nullable=True))
            if "ix_runs_batch_id" not in run_indexes:
                batch.create_index("ix_runs_batch_id", ["batch_id"])
    if "batch_row" not in record_cols:
        with op.batch_alter_table("run_records") as batch:
            batch.add_column(sa.Column("batch_row", sa.Integer, nullable=True))
    _backfill(conn)


def _backfill(conn: sa.Connection) -> None:
    runs = sa.table(
        "runs",
        sa.column("run_id"),
        sa.column("batch_id"),
        sa.column("group_id"),
        sa.column("group_seq"),
        sa.column("parent_run_id"),
        sa.column("created_at"),
    )
    rr = sa.table(
        "run_records",
        sa.column("run_id"),
        sa.column("idx"),
        sa.column("batch_row"),
        sa.column("status"),
        sa.column("detail"),
    )
    rows = list(
        conn.execute(
            sa.select(
                runs.c.run_id, runs.c.group_id, runs.c.group_seq, runs.c.parent_run_id
            ).order_by(runs.c.created_at)
        )
    )
    batch_of: dict[str, str] = {}
    for run_id, group_id, seq, parent in rows:
        batch = batch_of.get(parent or "") or group_id or run_id
        batch_of[run_id] = batch
        conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(batch_id=batch))
        if parent is None or parent not in batch_of:
            conn.execute(
                sa.update(rr)
                .where(rr.c.run_id == run_id)
                .values(batch_row=rr.c.idx + PART_ROWS * int(seq or 0))
            )
            continue
        parent_rows = [
            int(r[0] if r[0] is not None else r[1])
            for r in conn.execute(
                sa.select(rr.c.batch_row, rr.c.idx)
                .where(
                    rr.c.run_id == parent,
                    rr.c.status.in_(RERUN_STATUSES),
                    rr.c.detail != UNKNOWN_ID,
                )
                .order_by(rr.c.idx)
            )
        ]
        for idx, row in enumerate(parent_rows):
            conn.execute(
                sa.update(rr).where(rr.c.run_id == run_id, rr.c.idx == idx).values(batch_row=row)
            )


def downgrade() -> None:
    with op.batch_alter_table("run_records") as batch:
        batch.drop_column("batch_row")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_batch_id")
        batch.drop_column("batch_id")
