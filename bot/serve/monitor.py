"""The running bot's core: findings from sweeps and the queue into the store, placed in alerts, with
the state that makes the next sweep incremental (cursors, report times, consecutive failures).

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
from bot.models import HYGIENE_KINDS, Account, AccountError, Evidence, Finding
from bot.store import Placed, Placement
from bot.timeutil import iso_z, utcnow

log = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=20)  # CloudTrail can deliver events several minutes late
REPORT_CADENCE = timedelta(hours=4)  # AWS regenerates a credential report at most this often
GAP_AFTER = 3  # sweeps in a row an account could not be checked before a coverage_gap alert
DIGEST_OVER = 5  # more of one kind for one channel in one sweep than this go out as one digest
HELD_KINDS = HYGIENE_KINDS | {"coverage_gap"}  # wait for the sweep's digest decision
# A state that a later report can show fixed; a password use stays a past event.
RESOLVABLE_KINDS = ("root_access_key_active", "root_mfa_disabled")


@dataclass
class SweepOutcome:
    accounts: int = 0
    errors: list[AccountError] = field(default_factory=list)
    placed: Placed = field(default_factory=Placed)

    @property
    def new_findings(self) -> list[Finding]:
        return self.placed.new_findings


class Monitor:
    def __init__(self, store, sweeper, channel: str | None, lookback: timedelta, remind_after: timedelta,
                 holder: str, high_risk: frozenset[str], clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.sweeper = sweeper
        self.channel = channel
        self.lookback = lookback
        self.holder = holder
        self.clock = clock
        self.accounts: dict[str, Account] = {}
        self.placement = Placement(target=self.target, remind_after=remind_after, high_risk=high_risk)
        self._lock = threading.Lock()

    def account_name(self, account_id: str | None) -> str | None:
        account = self.known(account_id)
        return account.name if account else None

    def target(self, account_id: str | None) -> str | None:
        account = self.known(account_id)
        return (account.channel if account and account.channel else None) or self.channel

    def known(self, account_id: str | None) -> Account | None:
        """The configured account; a replica that has not swept yet reads the configuration first."""
        if not self.accounts:
            try:
                self.refresh_accounts()
            except Exception as exc:  # noqa: BLE001 - no AWS yet: the default channel until it works
                log.warning("cannot read the account list yet: %s", exc)
        return self.accounts.get(account_id or "")

    def refresh_accounts(self) -> list[Account]:
        accounts = self.sweeper.accounts()
        self.accounts = {a.id: a for a in accounts}
        return accounts

    # sweeps -----------------------------------------------------------------------------------
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

        def done(evidence: Evidence, found: list[Finding]) -> None:
            with self._lock:
                self._absorb(evidence, found, states[evidence.account.id], now, outcome, held)

        self.sweeper.sweep(accounts, start=lambda a: self._start(states[a.id], now), end=now,
                           report_since=lambda a: self._report_since(states[a.id], now),
                           reports=lambda a: self._report_due(states[a.id], now),
                           mfa_since=lambda a: states[a.id]["mfa_off_since"], on_done=done)
        self._release_held(held, now)
        self.store.state.sweep_finished(sweep_id, self.clock(), outcome.accounts - len(
            {e.account_id for e in outcome.errors}), outcome.errors, len(outcome.new_findings))
        return outcome

    def ingest(self, findings: Iterable[Finding]) -> Placed:
        """Findings from outside a sweep (the queue consumer): the same store, ids and grouping."""
        return self.store.alerts.ingest(list(findings), self.clock(), self.placement)

    def place_waiting(self) -> Placed:
        """Console calls whose sign-in did not come within 2 minutes get an alert of their own."""
        return self.store.alerts.place_waiting(self.clock(), self.placement)

    def release_held(self) -> int:
        """What a crashed sweep left waiting for its digest decision goes out one alert each."""
        held = self.store.alerts.held()
        self.store.alerts.release_held([f.id for f in held], self.clock(), self.placement)
        return len(held)

    def _absorb(self, evidence: Evidence, found: list[Finding], state: dict, now: datetime,
                outcome: SweepOutcome, held: list[Finding]) -> None:
        account = evidence.account.id
        if evidence.alias and account in self.accounts and not self.accounts[account].name:
            known = self.accounts[account]
            self.accounts[account] = Account(account, evidence.alias, known.channel, known.role_arn, known.owners)
        if evidence.errors:
            outcome.errors.extend(evidence.errors)
            failures = self.store.state.account_failed(account, evidence.errors[0].line())
            if failures >= GAP_AFTER:
                gap = self._coverage_gap(account, evidence.errors[0], state)
                self._store([gap], now, outcome, held)
            return
        self._store(found, now, outcome, held)
        self.store.alerts.resolve_absent(account, ["coverage_gap"], [], now)
        if evidence.report_row is not None:
            self.store.alerts.resolve_absent(account, RESOLVABLE_KINDS, [f.id for f in found], now)
        mfa_off = any(f.kind == "root_mfa_disabled" for f in found)
        report_time = iso_z(evidence.report_time) if evidence.report_time else None
        mfa_since = (state["mfa_off_since"] or report_time) if mfa_off else (
            None if evidence.report_row is not None else state["mfa_off_since"])
        self.store.state.account_checked(account, now, now, evidence.report_time, mfa_since)

    def _store(self, found: list[Finding], now: datetime, outcome: SweepOutcome, held: list[Finding]) -> None:
        placed = self.store.alerts.ingest(found, now, self.placement, hold=HELD_KINDS)
        held += [f for f in placed.new_findings if f.kind in HELD_KINDS]
        _merge(outcome.placed, placed)

    def _coverage_gap(self, account: str, error: AccountError, state: dict) -> Finding:
        since = iso_z(state["last_checked_at"]) if state.get("last_checked_at") else "never"
        return Finding(id=finding_id("rootcheck", account, "coverage_gap", since), kind="coverage_gap",
                       severity="high", account_id=account, source="rootcheck",
                       detail=f"Not checked in {GAP_AFTER} sweeps in a row (last success: {since}). "
                              f"Last error: {error.code}: {error.message}. {error.hint}".strip())

    def _release_held(self, held: list[Finding], now: datetime) -> None:
        """More than DIGEST_OVER of one kind for one channel go out as one digest; the rest alone."""
        groups: dict[tuple[str, str | None], list[str]] = defaultdict(list)
        for finding in held:
            groups[(finding.kind, self.target(finding.account_id))].append(finding.id)
        for (kind, target), ids in groups.items():
            digest = finding_id("rootcheck", None, "digest", kind, *sorted(ids)) if len(ids) > DIGEST_OVER else None
            self.store.alerts.release_held(ids, now, self.placement, digest_id=digest)

    def _start(self, state: dict, now: datetime) -> datetime:
        cursor = state.get("cursor")
        return cursor - OVERLAP if cursor else now - self.lookback

    def _report_since(self, state: dict, now: datetime) -> datetime:
        return state.get("report_seen_at") or now - self.lookback

    @staticmethod
    def _report_due(state: dict, now: datetime) -> bool:
        seen = state.get("report_seen_at")
        return seen is None or now - seen >= REPORT_CADENCE


def _merge(into: Placed, placed: Placed) -> None:
    into.new_findings += placed.new_findings
    into.opened += placed.opened
    into.changed += placed.changed
    into.waiting += placed.waiting
    into.high_risk += placed.high_risk
