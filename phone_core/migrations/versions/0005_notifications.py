"""Notifications when a batch ends (issue 10): each user's webhook and signing secret,
and the outbox the worker delivers from.

Revision ID: 0005_notifications
Revises: 0003_export_dialect
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_notifications"
down_revision = "0003_export_dialect"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_settings",
        sa.Column("user", sa.String(200), primary_key=True),
        sa.Column("webhook_url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(100), nullable=False),
        sa.Column("destination", sa.String(50), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("event", sa.String(50), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime, nullable=True),
        sa.Column("last_error", sa.String(50), nullable=True),
        sa.Column("delivered_at", sa.DateTime, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("subject", "destination", name="uq_notifications_subject_destination"),
    )
    op.create_index("ix_notifications_owner", "notifications", ["owner"])
    op.create_index("ix_notifications_due", "notifications", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_index("ix_notifications_owner", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("notify_settings")
