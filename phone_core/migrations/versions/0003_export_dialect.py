"""The uploaded CSV's delimiter on each run, for the Excel-friendly export (issue 10).

Revision ID: 0003_export_dialect
Revises: 0002
Runs made before it have NULL (read as ','): their Excel-friendly CSV is comma-separated.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_export_dialect"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("source_delimiter", sa.String(1), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("source_delimiter")
