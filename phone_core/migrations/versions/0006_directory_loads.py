"""The directory at a million rows (issue 11): identities for ``--append``, load figures.

Revision ID: 0006_directory_loads
Revises: 0004_batches
``directory.identity`` (``records.identity_key`` of the row; existing rows get it from their
stored keys, which hold the same normalised parts) and ``directory.load_id`` (the load a
row came from) let an append replace the rows it has new numbers for.
``directory_loads`` gains ``rows_replaced`` and ``seconds``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_directory_loads"
down_revision = "0004_batches"
branch_labels = None
depends_on = None

IDENTITY_MAX_LEN = 1200  # models.IDENTITY_MAX_LEN when this was written


def upgrade() -> None:
    with op.batch_alter_table("directory") as batch:
        batch.add_column(
            sa.Column("identity", sa.String(IDENTITY_MAX_LEN), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("load_id", sa.Integer, nullable=True))
    op.create_index("ix_directory_identity", "directory", ["identity"])
    # li:<slug>, em:<email>, nd:<first>|<last>|<domain>, nc:<first>|<last>|<company>
    # (name_key is "<first>|<last>" folded, company_key the normalised company name).
    op.execute(
        f"""
        UPDATE directory SET identity = CASE
            WHEN linkedin <> '' THEN 'li:' || linkedin
            WHEN email <> '' THEN 'em:' || email
            WHEN name_key <> '' AND name_key NOT LIKE '|%' AND domain <> ''
                AND length(name_key) + length(domain) < {IDENTITY_MAX_LEN - 4}
                THEN 'nd:' || name_key || '|' || domain
            WHEN name_key <> '' AND name_key NOT LIKE '|%' AND company_key <> ''
                AND length(name_key) + length(company_key) < {IDENTITY_MAX_LEN - 4}
                THEN 'nc:' || name_key || '|' || company_key
            ELSE '' END
        """
    )
    with op.batch_alter_table("directory_loads") as batch:
        batch.add_column(sa.Column("rows_replaced", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("seconds", sa.Float, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("directory_loads") as batch:
        batch.drop_column("seconds")
        batch.drop_column("rows_replaced")
    op.drop_index("ix_directory_identity", "directory")
    with op.batch_alter_table("directory") as batch:
        batch.drop_column("load_id")
        batch.drop_column("identity")
