"""Account owners are asked "was this you?": each question (one direct message per owner and alert)
has its row, and an alert records whom it asked, by when they must answer, and the first answer.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from bot.store.schema import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        for column in (
            sa.Column("asked_at", UtcDateTime),
            sa.Column("owners_asked", sa.Text),
            sa.Column("owners_more", sa.Text),
            sa.Column("confirm_deadline", UtcDateTime),
            sa.Column("answer", sa.String(8)),
            sa.Column("answered_by", sa.String(32)),
            sa.Column("answered_at", UtcDateTime),
            sa.Column("answer_reason", sa.Text),
            sa.Column("escalated_at", UtcDateTime),
        ):
            batch.add_column(column)
    op.create_table(
        "questions",
        sa.Column("alert_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("dm_channel", sa.String(32)),
        sa.Column("ts", sa.String(32)),
        sa.Column("answer_shown", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("claimed_at", UtcDateTime),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UtcDateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("posted_at", UtcDateTime),
    )
    op.create_index("ix_questions_claim", "questions", ["state", "created_at"])
    op.create_index("ix_alerts_confirm", "alerts", ["confirm_deadline"])


def downgrade() -> None:
    raise NotImplementedError("rootcheck does not downgrade its store; restore a backup to go back")
