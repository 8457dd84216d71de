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
# Columns added to version-1 tables by later revisions: left out here.
LATER_COLUMNS: dict[str, frozenset[str]] = {
    "runs": frozenset({"source_delimiter", "batch_id"}),  # 0003_export_dialect, 0004_batches
    "run_records": frozenset({"batch_row"}),  # 0004_batches
}


def _version_1(table: sa.Table, version_1: sa.MetaData) -> sa.Table:
    later = LATER_COLUMNS.get(table.name)
    if not later:
        return table
    columns = [c._copy() for c in table.columns if c.name not in later]
    indexes = [  # table-level indexes on the columns kept (column-level ones come along)
        sa.Index(i.name, *[c.name for c in i.columns], unique=i.unique)
        for i in table.indexes
        if i.name
        and not any(c.name in later for c in i.columns)
        and not (len(i.columns) == 1 and next(iter(i.columns)).index)
    ]
    return sa.Table(table.name, version_1, *columns, *indexes)


def _tables() -> list[sa.Table]:
    version_1 = sa.MetaData()
    return [_version_1(t, version_1) for t in metadata.sorted_tables if t.name not in LATER]


def upgrade() -> None:
    metadata.create_all(bind=op.get_bind(), tables=_tables())


def downgrade() -> None:
    metadata.drop_all(bind=op.get_bind(), tables=_tables())
