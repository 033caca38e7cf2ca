"""The running bot's core: a sweep's findings into the outbox, exactly once, with the state that
makes the next sweep incremental (cursors, report times, consecutive failures).

Written against the store and a sweeper (both small and fakeable); Slack never appears here.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterable

from bot.checks.fingerprint import finding_id
from bot.models import HYGIENE_KINDS, Account, AccountError, Evidence, Finding, Window
from bot.timeutil import iso_z, parse_time, utcnow

log = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=20)  # CloudTrail can deliver events several minutes late
REPORT_CADENCE = timedelta(hours=4)  # AWS regenerates a credential report at most this often
GAP_AFTER = 3  # sweeps in a row an account could not be checked before a coverage_gap alert
DIGEST_OVER = 5  # more hygiene findings than this, of one kind for one channel, go in one digest
# A state that a later report can show fixed; a password use stays a past event.
RESOLVABLE_KINDS = ("root_access_key_active", "root_mfa_disabled")


@dataclass
class SweepOutcome:
    accounts: int = 0
    new_findings: list[str] = field(default_factory=list)
    errors: list[AccountError] = field(default_factory=list)


class Monitor:
    def __init__(self, store, sweeper, channel: str | None, lookback: timedelta, remind_after: timedelta,
                 holder: str, clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.sweeper = sweeper
        self.channel = channel
        self.lookback = lookback
        self.remind_after = remind_after
        self.holder = holder
        self.clock = clock
        self.accounts: dict[str, Account] = {}
        self._lock = threading.Lock()

    def account_name(self, account_id: str | None) -> str | None:
        account = self.accounts.get(account_id or "")
        return account.name if account else None

    def target(self, account_id: str | None) -> str | None:
        account = self.accounts.get(account_id or "")
        return (account.channel if account and account.channel else None) or self.channel

    def refresh_accounts(self) -> list[Account]:
        accounts = self.sweeper.accounts(self.sweeper.discover())
        self.accounts = {a.id: a for a in accounts}
        return accounts

    def run_sweep(self, only: Iterable[str] | None = None) -> SweepOutcome:
        """One sweep of every account (or `only` these), recorded in the store."""
        now = self.clock()
        accounts = self.refresh_accounts()  # no credentials, Organizations denied: no sweep to record
        sweep_id = self.store.state.sweep_started(self.holder, now)
        if only:
            accounts = [a for a in accounts if a.id in set(only)]
        outcome = SweepOutcome(accounts=len(accounts))
        held: list[Finding] = []
        states = {a.id: self.store.state.account(a.id) for a in accounts}

        parts: dict[str, list[tuple[Evidence, list[Finding]]]] = defaultdict(list)

        def done(evidence: Evidence, found: list[Finding]) -> None:
            with self._lock:
                parts[evidence.account.id].append((evidence, found))
                if evidence.part == "done":
                    merged, found = _merged(parts.pop(evidence.account.id))
                    self._absorb(merged, found, states[evidence.account.id], now, outcome, held)

        self.sweeper.sweep(accounts, window=lambda a, region: Window(self._start(states[a.id], now), now),
                           report_due=lambda a: self._report_due(states[a.id], now),
                           report_since=lambda a: self._report_since(states[a.id], now),
                           mfa_since=lambda a: states[a.id]["mfa_off_since"], on_part=done)
        self._digest(held, now)
        self.store.state.sweep_finished(sweep_id, self.clock(), outcome.accounts - len(
            {e.account_id for e in outcome.errors}), outcome.errors, len(outcome.new_findings))
        return outcome

    def ingest(self, findings: Iterable[Finding]) -> list[str]:
        """Findings from outside a sweep (the queue consumer): the same outbox, the same ids."""
        now = self.clock()
        return [f.id for f in findings if self._store(f, now)]

    def _absorb(self, evidence: Evidence, found: list[Finding], state: dict, now: datetime,
                outcome: SweepOutcome, held: list[Finding]) -> None:
        account = evidence.account.id
        if evidence.alias and account in self.accounts and not self.accounts[account].name:
            self.accounts[account] = Account(account, evidence.alias, self.accounts[account].channel,
                                             self.accounts[account].role_arn)
        if evidence.errors:
            outcome.errors.extend(evidence.errors)
            failures = self.store.state.account_failed(account, evidence.errors[0].line())
            if failures >= GAP_AFTER:
                self._coverage_gap(account, evidence.errors[0], state, now, outcome)
            return
        for finding in found:
            if finding.kind in HYGIENE_KINDS:
                if self._store(finding, now, held=True):
                    held.append(finding)
                    outcome.new_findings.append(finding.id)
            elif self._store(finding, now):
                outcome.new_findings.append(finding.id)
        self.store.outbox.resolve_absent(account, ["coverage_gap"], [], now)
        if evidence.report_row is not None:
            self.store.outbox.resolve_absent(account, RESOLVABLE_KINDS, [f.id for f in found], now)
        mfa_off = any(f.kind == "root_mfa_disabled" for f in found)
        report_time = iso_z(evidence.report_time) if evidence.report_time else None
        mfa_since = (state["mfa_off_since"] or report_time) if mfa_off else (
            None if evidence.report_row is not None else state["mfa_off_since"])
        self.store.state.account_checked(account, now, now, evidence.report_time, mfa_since)

    def _store(self, finding: Finding, now: datetime, held: bool = False) -> bool:
        moment = parse_time(finding.event_time) if finding.event_time else None
        expectation = self.store.state.expectation(finding.account_id, moment)
        expected = (expectation.user_id, expectation.reason) if expectation else None
        remind = None if expected or finding.severity not in ("critical", "high") else now + self.remind_after
        return self.store.outbox.add(finding, self.target(finding.account_id), now, expected, remind, held)

    def _coverage_gap(self, account: str, error: AccountError, state: dict, now: datetime,
                      outcome: SweepOutcome) -> None:
        since = iso_z(state["last_checked_at"]) if state.get("last_checked_at") else "never"
        gap = Finding(id=finding_id("rootcheck", account, "coverage_gap", since), kind="coverage_gap",
                      severity="high", account_id=account, source="rootcheck",
                      detail=f"Not checked in {GAP_AFTER} sweeps in a row (last success: {since}). "
                             f"Last error: {error.code}: {error.message}. {error.hint}".strip())
        if self._store(gap, now):
            outcome.new_findings.append(gap.id)

    def _digest(self, held: list[Finding], now: datetime) -> None:
        groups: dict[tuple[str, str | None], list[str]] = defaultdict(list)
        for finding in held:
            groups[(finding.kind, self.target(finding.account_id))].append(finding.id)
        for (kind, target), ids in groups.items():
            if len(ids) > DIGEST_OVER:
                digest = finding_id("rootcheck", None, "digest", kind, *sorted(ids))
                self.store.outbox.add_digest(digest, kind, target, ids, now)
            else:
                self.store.outbox.release_held(ids)

    def _start(self, state: dict, now: datetime) -> datetime:
        cursor = state.get("cursor")
        return cursor - OVERLAP if cursor else now - self.lookback

    def _report_since(self, state: dict, now: datetime) -> datetime:
        return state.get("report_seen_at") or now - self.lookback

    @staticmethod
    def _report_due(state: dict, now: datetime) -> bool:
        seen = state.get("report_seen_at")
        return seen is None or now - seen >= REPORT_CADENCE


def _merged(parts: list[tuple[Evidence, list[Finding]]]) -> tuple[Evidence, list[Finding]]:
    """One account's parts seen as one piece of evidence, all or nothing, as before parts existed."""
    done = parts[-1][0]
    report = next((evidence for evidence, _ in parts if evidence.part == "report"), None)
    merged = Evidence(done.account, "done", alias=done.alias,
                      errors=[error for evidence, _ in parts for error in evidence.errors],
                      report_row=report.report_row if report else None,
                      report_time=report.report_time if report else None)
    return merged, [finding for _, found in parts for finding in found]
