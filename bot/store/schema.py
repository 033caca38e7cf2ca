"""The state store's tables (SQLAlchemy Core). Migrations in `bot/store/migrations` create them.

Every time is stored as naive UTC and read back as aware UTC, so SQLite and PostgreSQL agree.
"""

from __future__ import annotations

from datetime import datetime, timezone

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
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None else None


metadata = MetaData()

def _delivery_columns() -> list[Column]:
    """Columns every posted message has: where it went, its ack, and its retry state."""
    return [
        Column("state", String(10), nullable=False, index=True),  # pending, posting, posted, acked
        Column("channel", String(32)),
        Column("ts", String(32)),
        Column("created_at", UtcDateTime, nullable=False),
        Column("posted_at", UtcDateTime),
        Column("acked_by", String(32)),
        Column("acked_at", UtcDateTime),
        Column("needs_update", Boolean, nullable=False, default=False),
        Column("attempts", Integer, nullable=False, default=0),
        Column("next_attempt_at", UtcDateTime),
        Column("last_error", Text),
    ]


findings = Table(
    "findings", metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("account_id", String(12)),
    Column("payload", Text, nullable=False),           # the Finding as JSON
    Column("target", String(32)),                      # channel it should be posted to
    Column("event_time", UtcDateTime),
    Column("expected_by", String(32)),
    Column("expected_reason", Text),
    Column("digest_id", String(64), index=True),
    Column("resolved_at", UtcDateTime),
    Column("reminders", Integer, nullable=False, default=0),
    Column("next_reminder_at", UtcDateTime),
    *_delivery_columns(),
)

digests = Table(
    "digests", metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("target", String(32)),
    Column("finding_ids", Text, nullable=False),  # JSON list
    *_delivery_columns(),
)

# Migration 0002: the claim query and resolve_absent.
Index("ix_findings_claim", findings.c.state, findings.c.created_at)
Index("ix_digests_claim", digests.c.state, digests.c.created_at)
Index("ix_findings_account_kind", findings.c.account_id, findings.c.kind)

accounts = Table(
    "accounts", metadata,
    Column("account_id", String(12), primary_key=True),
    Column("cursor", UtcDateTime),                 # end of the last successful lookup window
    Column("failures", Integer, nullable=False, default=0),  # consecutive failed sweeps
    Column("last_error", Text),
    Column("last_checked_at", UtcDateTime),
    Column("report_seen_at", UtcDateTime),         # GeneratedTime of the last credential report
    Column("mfa_off_since", String(32)),            # first report of the current run showing MFA off
)

sweeps = Table(
    "sweeps", metadata,
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
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False, index=True),
    Column("actor", String(64)),
    Column("action", String(32), nullable=False),
    Column("target", String(64)),
    Column("detail", Text),
)

expectations = Table(
    "expectations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(12), nullable=False, index=True),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("user_id", String(32), nullable=False),
    Column("reason", Text, nullable=False),
)

leases = Table(
    "leases", metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("detail", Text),
)
