"""Initial schema: every table of phone_core.db as of version 1.

Revision ID: 0001
Later revisions must spell out their operations (op.add_column, ...); this first one
creates the version-1 tables from the metadata because there is nothing before it to
change. Tables added later (see ``LATER``) are created by their own revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from phone_core.db import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

LATER = frozenset({"users", "install_secrets"})  # 0002
LATER |= {"notify_settings", "notifications"}  # 0005_notifications
LATER |= {"purges", "erasures", "run_webhooks", "notification_attempts"}  # 0010
LATER |= {"suppression_lists", "suppression_entries", "audit_log"}  # 0009_suppression_audit
LATER |= {"vendor_jobs", "vendor_job_records"}  # 0007_vendor_jobs
LATER |= {"vendor_settings", "source_calls"}  # 0008_vendor_config
# Columns and indexes added to version-1 tables by later revisions: left out here.
LATER_COLUMNS: dict[str, frozenset[str]] = {
    # 0003_export_dialect, 0004_batches, 0010_retention_erasure, 0008_vendor_config
    "runs": frozenset(
        {"source_delimiter", "batch_id", "outputs_deleted_at", "records_redacted_at", "sources"}
    ),
    "run_records": frozenset({"batch_row", "dnc_list"}),  # 0004_batches, 0009_suppression_audit
    "directory": frozenset({"identity", "load_id"}),  # 0006_directory_loads
    "directory_loads": frozenset({"rows_replaced", "seconds"}),  # 0006_directory_loads
    "cache": frozenset({"line_type", "verified_at"}),  # 0007_vendor_jobs
}
LATER_INDEXES = frozenset({"ix_directory_identity"})  # 0006_directory_loads
LATER_INDEXES |= {"ix_run_records_batch_row", "ix_ledger_user_kind"}  # 0011_page_indexes


def _version_1(table: sa.Table, into: sa.MetaData) -> sa.Table:
    """``table`` as version 1 had it (without the columns and indexes added later)."""
    later = LATER_COLUMNS.get(table.name)
    if not later:  # all of it (constraints too) but the indexes added later
        copied = table.to_metadata(into)
        for index in [i for i in copied.indexes if i.name in LATER_INDEXES]:
            copied.indexes.discard(index)
        return copied
    copy = sa.Table(table.name, into, *[c._copy() for c in table.columns if c.name not in later])
    made = {index.name for index in copy.indexes}  # from columns with index=True
    for index in table.indexes:
        if index.name in LATER_INDEXES | made or any(c.name in later for c in index.columns):
            continue
        sa.Index(index.name, *[copy.c[c.name] for c in index.columns], unique=index.unique)
    return copy


def _tables() -> list[sa.Table]:
    return [t for t in metadata.sorted_tables if t.name not in LATER]


def upgrade() -> None:
    first = sa.MetaData()
    tables = [_version_1(t, first) for t in _tables()]
    first.create_all(bind=op.get_bind(), tables=tables)


def downgrade() -> None:
    metadata.drop_all(bind=op.get_bind(), tables=_tables())
