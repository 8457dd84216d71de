"""Compliance (issue 13): suppression (do-not-call) lists, the audit log, and the lists a
run record's phone was found on.

Revision ID: 0009_suppression_audit
Revises: 0006_directory_loads
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_suppression_audit"
down_revision = "0010_retention_erasure"
branch_labels = None
depends_on = None

PERSON_TEXT_MAX_LEN = 500  # models.PERSON_TEXT_MAX_LEN when this was written


def upgrade() -> None:
    op.create_table(
        "suppression_lists",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("phones", sa.Integer, nullable=False),
        sa.Column("people", sa.Integer, nullable=False),
        sa.Column("rows_read", sa.Integer, nullable=False),
        sa.Column("rows_refused", sa.Integer, nullable=False),
        sa.Column("loaded_by", sa.String(200), nullable=False),
        sa.Column("loaded_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "suppression_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("list_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(2), nullable=False),
        sa.Column("value", sa.String(PERSON_TEXT_MAX_LEN), nullable=False),
    )
    op.create_index("ix_suppression_entries_list_id", "suppression_entries", ["list_id"])
    op.create_index("ix_suppression_entries_match", "suppression_entries", ["kind", "value"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("via", sa.String(20), nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    with op.batch_alter_table("run_records") as batch:
        batch.add_column(sa.Column("dnc_list", sa.String(200), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("run_records") as batch:
        batch.drop_column("dnc_list")
    for name in ("ix_audit_log_action", "ix_audit_log_actor", "ix_audit_log_at"):
        op.drop_index(name, table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_suppression_entries_match", table_name="suppression_entries")
    op.drop_index("ix_suppression_entries_list_id", table_name="suppression_entries")
    op.drop_table("suppression_entries")
    op.drop_table("suppression_lists")
