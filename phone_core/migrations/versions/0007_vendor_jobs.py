"""Vendor adapters (issue 12): async job checkpoints, and what the cache knows of a phone.

Revision ID: 0007_vendor_jobs
Revises: 0006_directory_loads
``vendor_jobs`` / ``vendor_job_records``: an async vendor job is written before the
adapter waits for it, keyed by (source, run, record), so a restarted worker polls the same
job and never submits (and pays for) it twice. ``cache`` gains ``line_type`` and
``verified_at`` (when the vendor verified the phone; the TTL counts from it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_vendor_jobs"
down_revision = "0009_suppression_audit"
branch_labels = None
depends_on = None

RUN_ID_MAX_LEN = 64  # models.RUN_ID_MAX_LEN when this was written


def upgrade() -> None:
    op.create_table(
        "vendor_jobs",
        sa.Column("job_key", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("run_id", sa.String(RUN_ID_MAX_LEN + 8), nullable=False),
        sa.Column("vendor_job_id", sa.String(200), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("detail", sa.String(50), nullable=False, server_default=""),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "vendor_job_records",
        sa.Column("source", sa.String(50), primary_key=True),
        sa.Column("run_id", sa.String(RUN_ID_MAX_LEN + 8), primary_key=True),
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("job_key", sa.String(64), nullable=False),
    )
    op.create_index("ix_vendor_job_records_job_key", "vendor_job_records", ["job_key"])
    with op.batch_alter_table("cache") as batch:
        batch.add_column(sa.Column("line_type", sa.String(20), nullable=False, server_default=""))
        batch.add_column(sa.Column("verified_at", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cache") as batch:
        batch.drop_column("verified_at")
        batch.drop_column("line_type")
    op.drop_index("ix_vendor_job_records_job_key", "vendor_job_records")
    op.drop_table("vendor_job_records")
    op.drop_table("vendor_jobs")
