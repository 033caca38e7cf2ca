"""The first schema: findings outbox, digests, account state, sweeps, audit, expectations, leases.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from bot.store.schema import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _delivery_columns() -> list[sa.Column]:
    """Columns every posted message has: where it went, its ack, and its retry state."""
    return [
        sa.Column("state", sa.String(10), nullable=False, index=True),
        sa.Column("channel", sa.String(32)),
        sa.Column("ts", sa.String(32)),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("posted_at", UtcDateTime),
        sa.Column("acked_by", sa.String(32)),
        sa.Column("acked_at", UtcDateTime),
        sa.Column("needs_update", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UtcDateTime),
        sa.Column("last_error", sa.Text),
    ]


def upgrade() -> None:
    op.create_table(
        "findings",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("account_id", sa.String(12)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("target", sa.String(32)),
        sa.Column("event_time", UtcDateTime),
        sa.Column("expected_by", sa.String(32)),
        sa.Column("expected_reason", sa.Text),
        sa.Column("digest_id", sa.String(64), index=True),
        sa.Column("resolved_at", UtcDateTime),
        sa.Column("reminders", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_reminder_at", UtcDateTime),
        *_delivery_columns(),
    )
    op.create_table(
        "digests",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("target", sa.String(32)),
        sa.Column("finding_ids", sa.Text, nullable=False),
        *_delivery_columns(),
    )
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("cursor", UtcDateTime),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("last_checked_at", UtcDateTime),
        sa.Column("report_seen_at", UtcDateTime),
        sa.Column("mfa_off_since", sa.String(32)),
    )
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("holder", sa.String(128)),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("finished_at", UtcDateTime),
        sa.Column("accounts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("findings", sa.Integer, nullable=False, server_default="0"),
        sa.Column("errors", sa.Text),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UtcDateTime, nullable=False, index=True),
        sa.Column("actor", sa.String(64)),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(64)),
        sa.Column("detail", sa.Text),
    )
    op.create_table(
        "expectations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(12), nullable=False, index=True),
        sa.Column("starts_at", UtcDateTime, nullable=False),
        sa.Column("ends_at", UtcDateTime, nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("detail", sa.Text),
    )


def downgrade() -> None:
    for table in ("leases", "expectations", "audit", "sweeps", "accounts", "digests", "findings"):
        op.drop_table(table)
