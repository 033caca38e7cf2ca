"""Alerts become first-class: a finding keeps its row and its grouping evidence; an alert (one Slack
message) holds delivery, ack, reminders and the merged summary of its findings; membership is its
own table; thread replies have an outbox of their own.

A database of the previous release upgrades in place: each finding it posted (or was about to
post) becomes a single-finding alert with the same id, channel, ts, ack and reminders, and each
digest becomes a digest alert of its findings, so acknowledging and reminding keep working.

Revision ID: 0003
Revises: 0002
"""

import json
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

from bot.models import Finding, Summary, rank
from bot.store.schema import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

GROUPING_OF = {"root_console_login": "session", "root_console_login_failed": "failures", "root_activity": "credentials"}
SPAN = {"session": timedelta(hours=12), "credentials": timedelta(hours=12), "failures": timedelta(hours=1)}
OLD_DELIVERY = (
    "target",
    "expected_by",
    "expected_reason",
    "digest_id",
    "reminders",
    "next_reminder_at",
    "state",
    "channel",
    "ts",
    "posted_at",
    "acked_by",
    "acked_at",
    "needs_update",
    "attempts",
    "next_attempt_at",
    "last_error",
)


def _message_columns() -> list[sa.Column]:
    return [
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("target", sa.String(32)),
        sa.Column("channel", sa.String(32)),
        sa.Column("ts", sa.String(32)),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("claimed_at", UtcDateTime),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UtcDateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("posted_at", UtcDateTime),
    ]


def upgrade() -> None:
    _create_tables()
    with op.batch_alter_table("findings") as batch:
        for column in (
            sa.Column("event_name", sa.String(128)),
            sa.Column("source_ip", sa.String(64)),
            sa.Column("access_key_id", sa.String(128)),
            sa.Column("console", sa.Boolean, nullable=False, server_default=sa.false()),
            sa.Column("read_only", sa.Boolean, nullable=False, server_default=sa.false()),
            sa.Column("failed", sa.Boolean, nullable=False, server_default=sa.false()),
            sa.Column("grouped_at", UtcDateTime),
            sa.Column("held", sa.Boolean, nullable=False, server_default=sa.false()),
        ):
            batch.add_column(column)
    _move_deliveries()
    op.drop_index("ix_findings_claim", table_name="findings")
    op.drop_index("ix_digests_claim", table_name="digests")
    with op.batch_alter_table("findings") as batch:
        batch.drop_index("ix_findings_state")
        batch.drop_index("ix_findings_digest_id")
        for name in OLD_DELIVERY:
            batch.drop_column(name)
    op.drop_table("digests")
    op.create_index("ix_findings_account_time", "findings", ["account_id", "event_time"])
    with op.batch_alter_table("expectations") as batch:  # `expect cancel ACCOUNT_ID`
        batch.add_column(sa.Column("cancelled_at", UtcDateTime))
        batch.add_column(sa.Column("cancelled_by", sa.String(32)))
    op.create_index("ix_findings_waiting", "findings", ["grouped_at", "held"])


def downgrade() -> None:
    raise NotImplementedError("rootcheck does not downgrade its store; restore a backup to go back")


def _create_tables() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(12)),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("grouping", sa.String(16), nullable=False),
        sa.Column("group_key", sa.String(128)),
        sa.Column("ip", sa.String(64)),
        sa.Column("console", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("window_start", UtcDateTime),
        sa.Column("window_end", UtcDateTime),
        sa.Column("opened_at", UtcDateTime),
        sa.Column("escalations", sa.Text, nullable=False, server_default="[]"),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("severity_log", sa.Text, nullable=False, server_default="[]"),
        sa.Column("expected_by", sa.String(32)),
        sa.Column("expected_reason", sa.Text),
        sa.Column("resolved_at", UtcDateTime),
        sa.Column("acked_by", sa.String(32)),
        sa.Column("acked_at", UtcDateTime),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("shown_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("urgent_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("edited_at", UtcDateTime),
        sa.Column("editing_by", sa.String(128)),
        sa.Column("editing_until", UtcDateTime),
        sa.Column("edit_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_edit_at", UtcDateTime),
        sa.Column("summary_ts", sa.String(32)),
        sa.Column("summary_state", sa.String(10)),
        sa.Column("summary_claimed_at", UtcDateTime),
        sa.Column("summary_shown_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("urgent_since", UtcDateTime),
        sa.Column("reminders", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_reminder_at", UtcDateTime),
        *_message_columns(),
    )
    op.create_index("ix_alerts_account_window", "alerts", ["account_id", "window_end"])
    op.create_index("ix_alerts_claim", "alerts", ["state", "rank", "opened_at"])
    op.create_index("ix_alerts_edit", "alerts", ["state", "version", "shown_version"])
    op.create_table(
        "alert_findings",
        sa.Column("alert_id", sa.String(64), primary_key=True),
        sa.Column("finding_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_alert_findings_finding", "alert_findings", ["finding_id"])
    op.create_table(
        "replies",
        sa.Column("id", sa.String(96), primary_key=True),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        *_message_columns(),
    )
    op.create_index("ix_replies_claim", "replies", ["state", "created_at"])


_T = UtcDateTime
OLD_FINDINGS = sa.table(
    "findings",
    *(
        sa.column(n)
        for n in (
            "id",
            "kind",
            "payload",
            "target",
            "expected_by",
            "expected_reason",
            "digest_id",
            "reminders",
            "state",
            "channel",
            "ts",
            "acked_by",
            "needs_update",
            "attempts",
            "last_error",
            "event_name",
            "source_ip",
            "failed",
            "held",
        )
    ),
    *(
        sa.column(n, _T)
        for n in (
            "event_time",
            "created_at",
            "resolved_at",
            "next_reminder_at",
            "posted_at",
            "acked_at",
            "next_attempt_at",
            "grouped_at",
        )
    ),
)
OLD_DIGESTS = sa.table(
    "digests",
    *(
        sa.column(n)
        for n in (
            "id",
            "kind",
            "target",
            "finding_ids",
            "state",
            "channel",
            "ts",
            "acked_by",
            "needs_update",
            "attempts",
            "last_error",
        )
    ),
    *(sa.column(n, _T) for n in ("created_at", "posted_at", "acked_at", "next_attempt_at")),
)
ALERTS = sa.table(
    "alerts",
    *(
        sa.column(n)
        for n in (
            "id",
            "account_id",
            "kind",
            "grouping",
            "group_key",
            "ip",
            "console",
            "escalations",
            "summary",
            "count",
            "severity",
            "rank",
            "severity_log",
            "expected_by",
            "expected_reason",
            "acked_by",
            "version",
            "shown_version",
            "urgent_version",
            "summary_shown_version",
            "reminders",
            "state",
            "target",
            "channel",
            "ts",
            "attempts",
            "last_error",
            "edit_failures",
        )
    ),
    *(
        sa.column(n, _T)
        for n in (
            "window_start",
            "window_end",
            "opened_at",
            "resolved_at",
            "acked_at",
            "urgent_since",
            "next_reminder_at",
            "next_attempt_at",
            "created_at",
            "posted_at",
        )
    ),
)
MEMBERS = sa.table("alert_findings", sa.column("alert_id"), sa.column("finding_id"))


def _move_deliveries() -> None:
    """Every old message becomes an alert with the same id and state; its findings its members."""
    conn = op.get_bind()
    rows = conn.execute(sa.select(OLD_FINDINGS)).mappings().all()
    payloads = {row["id"]: Finding.from_dict(json.loads(row["payload"])) for row in rows}
    for row in rows:
        finding = payloads[row["id"]]
        conn.execute(
            sa.update(OLD_FINDINGS)
            .where(OLD_FINDINGS.c.id == row["id"])
            .values(
                event_name=finding.event_name,
                source_ip=finding.source_ip,
                failed=row["kind"] == "root_console_login_failed",
                held=row["state"] == "held",
                grouped_at=None if row["state"] == "held" else row["created_at"],
            )
        )
        if row["digest_id"] is None and row["state"] != "held":
            _insert_alert(conn, row, [finding], GROUPING_OF.get(row["kind"], "single"))
    for digest in conn.execute(sa.select(OLD_DIGESTS)).mappings().all():
        members = [payloads[i] for i in json.loads(digest["finding_ids"]) if i in payloads]
        _insert_alert(conn, digest, members, "digest")


def _insert_alert(conn, row, members: list[Finding], grouping: str) -> None:
    summary = Summary()
    for member in members:
        summary.add(member)
    opener = members[0] if members else None
    start = row.get("event_time")
    expected = row.get("expected_by")
    severity = "low" if expected else (summary.severity if members else "high")
    shown = 1 if row["state"] in ("posted", "acked") else 0
    conn.execute(
        sa.insert(ALERTS).values(
            id=row["id"],
            account_id=opener.account_id if grouping != "digest" and opener else None,
            kind=row["kind"],
            grouping=grouping,
            console=False,
            escalations="[]",
            severity_log="[]",
            group_key=opener.source_ip if grouping == "credentials" and opener else None,
            ip=opener.source_ip if grouping == "session" and opener else None,
            window_start=start,
            window_end=start + SPAN[grouping] if start is not None and grouping in SPAN else None,
            opened_at=start,
            summary=json.dumps(summary.to_json()),
            count=summary.count,
            severity=severity,
            rank=rank(severity),
            expected_by=expected,
            expected_reason=row.get("expected_reason"),
            resolved_at=row.get("resolved_at"),
            acked_by=row["acked_by"],
            acked_at=row["acked_at"],
            version=shown + 1 if row["needs_update"] else max(shown, 1),
            shown_version=shown,
            urgent_version=0,
            summary_shown_version=0,
            reminders=row.get("reminders") or 0,
            edit_failures=0,
            urgent_since=row["created_at"] if severity in ("critical", "high") else None,
            next_reminder_at=row.get("next_reminder_at"),
            state={"posting": "posting", "posted": "posted", "acked": "posted"}.get(row["state"], "pending"),
            target=row["target"],
            channel=row["channel"],
            ts=row["ts"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            last_error=row["last_error"],
            created_at=row["created_at"],
            posted_at=row["posted_at"],
        )
    )
    for member in members:
        conn.execute(sa.insert(MEMBERS).values(alert_id=row["id"], finding_id=member.id))
