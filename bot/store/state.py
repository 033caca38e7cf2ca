"""Everything the bot remembers besides the outbox: per-account cursors and failures, sweeps,
the audit log, announced root use (`expect`), and leases (the scheduler leader, the running scan).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.models import AccountError
from bot.store.db import writer
from bot.store.schema import accounts, alert_findings, alerts, audit, expectations, findings, leases, replies, sweeps


@dataclass(frozen=True)
class SweepRun:
    id: int
    started_at: datetime
    finished_at: datetime | None
    accounts: int
    failed: int
    findings: int
    errors: list[dict]


@dataclass(frozen=True)
class Expectation:
    account_id: str
    starts_at: datetime
    ends_at: datetime
    user_id: str
    reason: str


class State:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.write = writer(engine).begin

    # accounts -------------------------------------------------------------------------------
    def account(self, account_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(accounts).where(accounts.c.account_id == account_id)).first()
        return (
            dict(row._mapping)
            if row
            else {
                "account_id": account_id,
                "cursor": None,
                "failures": 0,
                "report_seen_at": None,
                "mfa_off_since": None,
            }
        )

    def account_checked(self, account_id: str, now: datetime) -> None:
        """Its sign-ins were read: the account is checked (its Regions have cursors of their own)."""
        self._upsert(account_id, {"failures": 0, "last_error": None, "last_checked_at": now})

    def report_seen(self, account_id: str, report_time: datetime | None, mfa_off_since: str | None) -> None:
        """A good credential report: when it was made, and since when it shows root without MFA."""
        values: dict[str, Any] = {"mfa_off_since": mfa_off_since}
        if report_time is not None:
            values["report_seen_at"] = report_time
        self._upsert(account_id, values)

    def account_failed(self, account_id: str, error: str) -> int:
        """Record one more failed sweep; returns how many in a row."""
        failures = self.account(account_id)["failures"] + 1
        self._upsert(account_id, {"failures": failures, "last_error": error})
        return failures

    def failing_accounts(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(accounts).where(accounts.c.failures > 0)).all()
        return [dict(row._mapping) for row in rows]

    def _upsert(self, account_id: str, values: dict[str, Any]) -> None:
        with self.write() as conn:
            changed = conn.execute(update(accounts).where(accounts.c.account_id == account_id).values(**values))
            if changed.rowcount == 0:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(accounts).values(account_id=account_id, **{"failures": 0, **values}))
                except IntegrityError:  # another replica inserted it first
                    conn.execute(update(accounts).where(accounts.c.account_id == account_id).values(**values))

    # sweeps ---------------------------------------------------------------------------------
    def sweep_started(self, holder: str, now: datetime) -> int:
        with self.write() as conn:
            key = conn.execute(
                insert(sweeps).values(holder=holder, started_at=now, accounts=0, failed=0, findings=0)
            ).inserted_primary_key
        assert key is not None
        return key[0]

    def sweep_finished(
        self,
        sweep_id: int,
        now: datetime,
        accounts_checked: int,
        errors: list[AccountError],
        new_findings: int,
        failed: int,
    ) -> None:
        payload = json.dumps([e.__dict__ for e in errors])
        with self.write() as conn:
            conn.execute(
                update(sweeps)
                .where(sweeps.c.id == sweep_id)
                .values(
                    finished_at=now,
                    accounts=accounts_checked + failed,
                    failed=failed,
                    findings=new_findings,
                    errors=payload,
                )
            )

    def last_sweep(self, finished: bool = True) -> SweepRun | None:
        query = select(sweeps).order_by(sweeps.c.id.desc()).limit(1)
        if finished:
            query = query.where(sweeps.c.finished_at.isnot(None))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        m = row._mapping
        return SweepRun(
            m["id"],
            m["started_at"],
            m["finished_at"],
            m["accounts"],
            m["failed"],
            m["findings"],
            json.loads(m["errors"] or "[]"),
        )

    # audit ----------------------------------------------------------------------------------
    def audit(
        self, now: datetime, actor: str | None, action: str, target: str | None = None, detail: str | None = None
    ) -> None:
        with self.write() as conn:
            conn.execute(insert(audit).values(at=now, actor=actor, action=action, target=target, detail=detail))

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(audit).order_by(audit.c.id.desc()).limit(limit)).all()
        return [dict(row._mapping) for row in rows]

    # expectations ---------------------------------------------------------------------------
    def expect(self, account_id: str, starts_at: datetime, duration: timedelta, user_id: str, reason: str) -> None:
        with self.write() as conn:
            conn.execute(
                insert(expectations).values(
                    account_id=account_id,
                    starts_at=starts_at,
                    ends_at=starts_at + duration,
                    user_id=user_id,
                    reason=reason,
                )
            )

    def cancel_expectation(self, account_id: str, user: str, now: datetime) -> int:
        """`expect cancel ACCOUNT_ID`: close the account's open windows now; returns how many."""
        with self.write() as conn:
            return conn.execute(
                update(expectations)
                .where(
                    expectations.c.account_id == account_id,
                    expectations.c.ends_at >= now,
                    expectations.c.cancelled_at.is_(None),
                )
                .values(cancelled_at=now, cancelled_by=user)
            ).rowcount

    def open_expectations(self, now: datetime) -> list[Expectation]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(expectations)
                .where(
                    expectations.c.starts_at <= now,
                    expectations.c.ends_at >= now,
                    expectations.c.cancelled_at.is_(None),
                )
                .order_by(expectations.c.ends_at)
            ).all()
        return [Expectation(r.account_id, r.starts_at, r.ends_at, r.user_id, r.reason) for r in rows]

    def expectation(self, account_id: str | None, at: datetime | None) -> Expectation | None:
        if account_id is None or at is None:
            return None
        query = (
            select(expectations)
            .where(
                expectations.c.account_id == account_id,
                expectations.c.starts_at <= at,
                expectations.c.ends_at >= at,
                expectations.c.cancelled_at.is_(None),
            )
            .order_by(expectations.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        m = row._mapping
        return Expectation(m["account_id"], m["starts_at"], m["ends_at"], m["user_id"], m["reason"])

    # leases ---------------------------------------------------------------------------------
    def take_lease(self, name: str, holder: str, ttl: timedelta, now: datetime, detail: str | None = None) -> bool:
        """Take or renew a lease; True while this holder has it. Works across replicas."""
        with self.write() as conn:
            taken = (
                conn.execute(
                    update(leases)
                    .where(leases.c.name == name, (leases.c.holder == holder) | (leases.c.expires_at < now))
                    .values(holder=holder, expires_at=now + ttl, detail=detail)
                ).rowcount
                == 1
            )
            if taken:
                return True
            try:
                with conn.begin_nested():
                    conn.execute(insert(leases).values(name=name, holder=holder, expires_at=now + ttl, detail=detail))
            except IntegrityError:
                return False
        return True

    def release_lease(self, name: str, holder: str) -> None:
        with self.write() as conn:
            conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))

    def lease(self, name: str, now: datetime) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(leases).where(leases.c.name == name, leases.c.expires_at >= now)).first()
        return dict(row._mapping) if row else None

    # housekeeping ---------------------------------------------------------------------------
    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def purge(self, before: datetime) -> None:
        """Retention: alerts (with their findings and replies), sweeps and the audit log older than
        ROOTCHECK_RETENTION. An alert goes when it was created before `before`; a finding when it
        is older and in no alert that stays."""
        with self.write() as conn:
            old = select(alerts.c.id).where(alerts.c.created_at < before)
            conn.execute(delete(replies).where(replies.c.alert_id.in_(old)))
            conn.execute(delete(alert_findings).where(alert_findings.c.alert_id.in_(old)))
            conn.execute(delete(alerts).where(alerts.c.created_at < before))
            kept = select(alert_findings.c.finding_id)
            conn.execute(delete(findings).where(findings.c.created_at < before, findings.c.id.notin_(kept)))
            conn.execute(delete(audit).where(audit.c.at < before))
            conn.execute(delete(sweeps).where(sweeps.c.started_at < before))
            conn.execute(delete(expectations).where(expectations.c.ends_at < before))
