"""Retention, erasure and completion webhooks (issue 13, items 2, 3 and 5).

Revision ID: 0010_retention_erasure
Revises: 0006_directory_loads
``runs`` gains ``outputs_deleted_at`` and ``records_redacted_at`` (what the retention
purge did to the run); new tables: ``purges`` (each purge, counts only), ``erasures``
(right-to-be-forgotten requests and their receipts), ``run_webhooks`` (the API's per-run
``webhook_url``) and ``notification_attempts`` (each delivery attempt, shown on the run).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_retention_erasure"
down_revision = "0006_directory_loads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("outputs_deleted_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("records_redacted_at", sa.DateTime, nullable=True))
    op.create_table(
        "purges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("as_of", sa.DateTime, nullable=False),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "erasures",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("subject", sa.String(600), nullable=False),
        sa.Column("subject_hash", sa.String(64), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("plan", sa.JSON, nullable=True),
        sa.Column("receipt", sa.JSON, nullable=True),
        sa.Column("requested_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_erasures_subject_hash", "erasures", ["subject_hash"])
    op.create_table(
        "run_webhooks",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "notification_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("notification_id", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("error", sa.String(50), nullable=True),
    )
    op.create_index(
        "ix_notification_attempts_notification_id", "notification_attempts", ["notification_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_notification_attempts_notification_id", "notification_attempts")
    op.drop_table("notification_attempts")
    op.drop_table("run_webhooks")
    op.drop_index("ix_erasures_subject_hash", "erasures")
    op.drop_table("erasures")
    op.drop_table("purges")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("records_redacted_at")
        batch.drop_column("outputs_deleted_at")
