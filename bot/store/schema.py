"""The state store's tables (SQLAlchemy Core). Migrations in `bot/store/migrations` create them.

Every time is stored as naive UTC and read back as aware UTC, so SQLite and PostgreSQL agree.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class UtcDateTime(TypeDecorator):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


metadata = MetaData()


def _message_columns() -> list[Column]:
    """A Slack message's delivery: where it goes, who claimed it and when, retries."""
    return [
        Column("target", String(32)),  # the channel it should be posted to
        Column("channel", String(32)),
        Column("ts", String(32)),
        *_claim_columns(),
    ]


def _claim_columns() -> list[Column]:
    """Something sent to Slack once: its state, who claimed it and when, retries."""
    return [
        Column("state", String(10), nullable=False),  # pending, posting, posted, failed
        Column("claimed_by", String(128)),
        Column("claimed_at", UtcDateTime),
        Column("attempts", Integer, nullable=False, default=0),
        Column("next_attempt_at", UtcDateTime),
        Column("last_error", Text),
        Column("created_at", UtcDateTime, nullable=False),
        Column("posted_at", UtcDateTime),
    ]


findings = Table(
    "findings",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("account_id", String(12)),
    Column("payload", Text, nullable=False),  # the Finding as JSON (its `scan --format json` line)
    Column("event_time", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),  # when rootcheck first saw it
    Column("resolved_at", UtcDateTime),  # hygiene: a later report no longer shows it
    # grouping evidence the JSON line does not carry (models.Clues)
    Column("event_name", String(128)),
    Column("source_ip", String(64)),
    Column("access_key_id", String(128)),
    Column("console", Boolean, nullable=False, default=False),
    Column("read_only", Boolean, nullable=False, default=False),
    Column("failed", Boolean, nullable=False, default=False),
    # NULL until placed in its alerts; `held` (hygiene, coverage gaps) waits for the sweep's digest decision
    Column("grouped_at", UtcDateTime),
    Column("held", Boolean, nullable=False, default=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(64), primary_key=True),  # the id of the finding that opened it (or a digest id)
    Column("account_id", String(12)),
    Column("kind", String(40), nullable=False),  # of the finding that opened it
    Column("grouping", String(16), nullable=False),  # session, credentials, failures, high_risk, single, digest
    Column("group_key", String(128)),  # credentials: access key or source IP
    Column("ip", String(64)),  # session: the sign-in's source IP
    Column("console", Boolean, nullable=False, default=False),
    Column("window_start", UtcDateTime),
    Column("window_end", UtcDateTime),
    Column("opened_at", UtcDateTime),  # event time of the finding that opened it: posting order
    Column("escalations", Text, nullable=False, default="[]"),  # JSON list
    Column("summary", Text, nullable=False),  # models.Summary as JSON, merged as findings join
    Column("count", Integer, nullable=False, default=0),
    Column("severity", String(10), nullable=False),  # current, as shown
    Column("rank", Integer, nullable=False),  # 0 critical .. 3 low: the claim order
    Column("severity_log", Text, nullable=False, default="[]"),  # JSON: [{at, severity, why}]
    Column("expected_by", String(32)),
    Column("expected_reason", Text),
    Column("resolved_at", UtcDateTime),
    Column("acked_by", String(32)),
    Column("acked_at", UtcDateTime),
    # what Slack shows: `version` counts changes, `shown_version` the one last posted or edited
    Column("version", Integer, nullable=False, default=1),
    Column("shown_version", Integer, nullable=False, default=0),
    Column("urgent_version", Integer, nullable=False, default=0),  # a person acted: show this version at once
    Column("edited_at", UtcDateTime),
    Column("editing_by", String(128)),
    Column("editing_until", UtcDateTime),
    Column("edit_failures", Integer, nullable=False, default=0),
    Column("next_edit_at", UtcDateTime),
    # the thread's activity summary reply (rootcheck_summary metadata), edited in place
    Column("summary_ts", String(32)),
    Column("summary_state", String(10)),  # NULL, posting, posted
    Column("summary_claimed_at", UtcDateTime),
    Column("summary_shown_version", Integer, nullable=False, default=0),
    # reminders count from when the alert first became high or critical
    Column("urgent_since", UtcDateTime),
    Column("reminders", Integer, nullable=False, default=0),
    Column("next_reminder_at", UtcDateTime),
    # "was this you?" (migration 0004): whom it asked, by when they answer, and the first answer
    Column("asked_at", UtcDateTime),
    Column("owners_asked", Text),  # JSON: the Slack user ids asked (only they may answer)
    Column("owners_more", Text),  # JSON: owners named in the alert but not asked (past 20)
    Column("confirm_deadline", UtcDateTime),  # the first delivered question + ROOTCHECK_CONFIRM_TIMEOUT
    Column("answer", String(8)),  # yes, no
    Column("answered_by", String(32)),
    Column("answered_at", UtcDateTime),
    Column("answer_reason", Text),
    Column("escalated_at", UtcDateTime),  # the admins were called (at most once)
    *_message_columns(),
)

questions = Table(  # one direct message per owner and alert
    "questions",
    metadata,
    Column("alert_id", String(64), primary_key=True),
    Column("user_id", String(32), primary_key=True),
    Column("dm_channel", String(32)),
    Column("ts", String(32)),
    Column("answer_shown", Boolean, nullable=False, default=False),
    *_claim_columns(),
)

alert_findings = Table(
    "alert_findings",
    metadata,
    Column("alert_id", String(64), primary_key=True),
    Column("finding_id", String(64), primary_key=True),
)

replies = Table(  # thread replies (audit, reminders, call-outs), posted exactly once
    "replies",
    metadata,
    Column("id", String(96), primary_key=True),  # what it is about, e.g. "ack:<alert id>"
    Column("alert_id", String(64), nullable=False),
    Column("body", Text, nullable=False),  # JSON: what to say; bot/slack renders it
    *_message_columns(),
)

# Indexes: grouping reads an account's open alerts and waiting findings; delivery claims due rows.
Index("ix_findings_account_kind", findings.c.account_id, findings.c.kind)
Index("ix_findings_account_time", findings.c.account_id, findings.c.event_time)
Index("ix_findings_waiting", findings.c.grouped_at, findings.c.held)
Index("ix_alerts_account_window", alerts.c.account_id, alerts.c.window_end)
Index("ix_alerts_claim", alerts.c.state, alerts.c.rank, alerts.c.opened_at)
Index("ix_alerts_edit", alerts.c.state, alerts.c.version, alerts.c.shown_version)
Index("ix_alert_findings_finding", alert_findings.c.finding_id)
Index("ix_replies_claim", replies.c.state, replies.c.created_at)
Index("ix_questions_claim", questions.c.state, questions.c.created_at)
Index("ix_alerts_confirm", alerts.c.confirm_deadline)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("cursor", UtcDateTime),  # end of the last successful lookup window
    Column("failures", Integer, nullable=False, default=0),  # consecutive failed sweeps
    Column("last_error", Text),
    Column("last_checked_at", UtcDateTime),
    Column("report_seen_at", UtcDateTime),  # GeneratedTime of the last credential report
    Column("mfa_off_since", String(32)),  # first report of the current run showing MFA off
)

region_cursors = Table(  # migration 0005: region '*' holds an account's cursor from before per-Region cursors
    "region_cursors",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("cursor", UtcDateTime),  # end of the last window whose lookups all succeeded
    Column("failures", Integer, nullable=False, default=0),  # sweeps in a row this Region failed
    Column("last_error", Text),
)

directory = Table(  # the Organization's accounts as the leader last read them (about hourly)
    "directory",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("name", Text),
    Column("owners", Text, nullable=False, default="[]"),  # JSON, from the owner tag
    Column("refreshed_at", UtcDateTime, nullable=False),
)

sweeps = Table(
    "sweeps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("holder", String(128)),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("accounts", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("findings", Integer, nullable=False, default=0),
    Column("errors", Text),  # JSON list of AccountError dicts
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False, index=True),
    Column("actor", String(64)),
    Column("action", String(32), nullable=False),
    Column("target", String(64)),
    Column("detail", Text),
)

expectations = Table(
    "expectations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(12), nullable=False, index=True),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("user_id", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("cancelled_at", UtcDateTime),
    Column("cancelled_by", String(32)),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("detail", Text),
)
