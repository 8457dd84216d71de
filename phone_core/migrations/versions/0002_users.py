"""The user registry and the install's shared secrets (issue 9, accounts and sessions).

Revision ID: 0002
Revises: 0001
An existing ``auth.yaml`` (the credentials file of version 1) is imported by
``phone_core.users.import_legacy_file`` when a runtime opens the data dir, not here: a
migration does not know the data dir.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("username", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.String(100), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("removed_at", sa.DateTime, nullable=True),
        sa.Column("sessions_valid_after", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "install_secrets",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("install_secrets")
    op.drop_table("users")
