"""Cursors per (account, Region), so one failing Region only holds back its own lookups; and the
Organization's accounts (names, owner tags) as the leader last read them, for every replica.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from bot.store.schema import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "region_cursors",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("cursor", UtcDateTime),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
    )
    op.create_table(
        "directory",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("owners", sa.Text, nullable=False, server_default="[]"),
        sa.Column("refreshed_at", UtcDateTime, nullable=False),
    )
    # The old per-account cursor becomes every Region's starting point: nothing is read twice or skipped.
    op.execute(
        "INSERT INTO region_cursors (account_id, region, cursor, failures) "
        "SELECT account_id, '*', cursor, 0 FROM accounts WHERE cursor IS NOT NULL"
    )


def downgrade() -> None:
    raise NotImplementedError("rootcheck does not downgrade its store; restore a backup to go back")
