"""Vendor sources configured in the app, measured per lookup, chosen per batch (issue 12).

Revision ID: 0008_vendor_config
Revises: 0006_directory_loads
``vendor_settings``: each adapter as the admin set it (API key Fernet-encrypted);
``source_calls``: one row per record a source was asked about (status, credits, latency);
``runs.sources``: the sources a batch chose (NULL: the admin's waterfall).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_vendor_config"
down_revision = "0007_vendor_jobs"
branch_labels = None
depends_on = None

RUN_ID_MAX_LEN = 64  # models.RUN_ID_MAX_LEN when this was written


def upgrade() -> None:
    op.create_table(
        "vendor_settings",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("lookup_cost", sa.Integer, nullable=True),
        sa.Column("found_cost", sa.Integer, nullable=True),
        sa.Column("failed_cost", sa.Integer, nullable=True),
        sa.Column("rate_per_sec", sa.Float, nullable=True),
        sa.Column("concurrency", sa.Integer, nullable=True),
        sa.Column("base_url", sa.String(500), nullable=False),
        sa.Column("api_key", sa.Text, nullable=False),
        sa.Column("key_set_at", sa.DateTime, nullable=True),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "source_calls",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("run_id", sa.String(RUN_ID_MAX_LEN), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("detail", sa.String(200), nullable=False),
        sa.Column("credits", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_source_calls_source_time", "source_calls", ["source", "created_at"])
    op.create_index("ix_source_calls_time", "source_calls", ["created_at"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("sources", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("sources")
    op.drop_index("ix_source_calls_time", "source_calls")
    op.drop_index("ix_source_calls_source_time", "source_calls")
    op.drop_table("source_calls")
    op.drop_table("vendor_settings")
