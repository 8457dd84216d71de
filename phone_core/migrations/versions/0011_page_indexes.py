"""Pages fast at any history size (issue 11): indexes for the paged Runs page and the
credit sums.

Revision ID: 0011_page_indexes
Revises: 0006_directory_loads
``run_records (run_id, batch_row)``: a batch's rows in upload order, and whether a later
re-run of the batch took a row over (``batch_views``), without scanning a run's records.
``ledger (user, kind, created_at, amount)``: the balance and month sums of one user
(``credits.summarize``, on every page's sidebar) from the index alone.
"""

from __future__ import annotations

from alembic import op

revision = "0011_page_indexes"
down_revision = "0008_vendor_config"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_run_records_batch_row", "run_records", ["run_id", "batch_row"])
    op.create_index("ix_ledger_user_kind", "ledger", ["user", "kind", "created_at", "amount"])


def downgrade() -> None:
    op.drop_index("ix_ledger_user_kind", "ledger")
    op.drop_index("ix_run_records_batch_row", "run_records")
