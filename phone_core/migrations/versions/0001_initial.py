"""Initial schema: every table of phone_core.db as of version 1.

Revision ID: 0001
Later revisions must spell out their operations (op.add_column, ...); this first one
creates the tables from the metadata because there is nothing before it to change.
"""

from __future__ import annotations

from alembic import op

from phone_core.db import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(bind=op.get_bind())


def downgrade() -> None:
    metadata.drop_all(bind=op.get_bind())
