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


def _tables() -> list[sa.Table]:
    return [t for t in metadata.sorted_tables if t.name not in LATER]


def upgrade() -> None:
    metadata.create_all(bind=op.get_bind(), tables=_tables())


def downgrade() -> None:
    metadata.drop_all(bind=op.get_bind(), tables=_tables())
