"""Indexes for the delivery loop: the claim query (pending rows in creation order) and
`resolve_absent` (open findings of one account and kind).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # IF NOT EXISTS: SQLite runs DDL outside the transaction, so a start killed half-way must be able to redo it
    op.create_index("ix_findings_claim", "findings", ["state", "created_at"], if_not_exists=True)
    op.create_index("ix_digests_claim", "digests", ["state", "created_at"], if_not_exists=True)
    op.create_index("ix_findings_account_kind", "findings", ["account_id", "kind"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_findings_account_kind", table_name="findings")
    op.drop_index("ix_digests_claim", table_name="digests")
    op.drop_index("ix_findings_claim", table_name="findings")
