"""The running bot's core: findings from sweeps and the queue into the store, placed in alerts, with
the state that makes the next sweep incremental (cursors per Region, report times, failures).

A sweep hands over each account's evidence in parts as they finish. A root sign-in is stored (and
posted) from the page that holds it; a Region's other findings are stored when all its pages are
read, in one batch, so they are grouped in event-time order although LookupEvents reads newest
first. A failing Region keeps only its own cursor back, and hygiene findings are resolved only
after a good credential report. Written against the store and a sweeper (both small and
fakeable); Slack never appears here.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.checks.fingerprint import finding_id
from bot.models import HYGIENE_KINDS, SIGNIN_REGION, Account, AccountError, Evidence, Finding, Window
from bot.service import report_due
from bot.store import BEFORE_REGIONS, Placed, Placement, Store
from bot.timeutil import iso_z, utcnow

if TYPE_CHECKING:
    from bot.sweeper import Sweeper

log = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=60)  # CloudTrail promises no delivery time: each window re-reads the last hour
REPORT_CADENCE = timedelta(hours=4)  # AWS regenerates a credential report at most this often
DIRECTORY_EVERY = timedelta(hours=1)  # Organizations accounts and owner tags are read again this often
GAP_AFTER = 3  # sweeps in a row an account (or one of its Regions) could not be checked: a coverage gap
DIGEST_OVER = 5  # more of one kind for one channel in one sweep than this go out as one digest
HELD_KINDS = HYGIENE_KINDS | {"coverage_gap"}  # wait for the sweep's digest decision
# A state that a later report can show fixed; a password use stays a past event.
RESOLVABLE_KINDS = ("root_access_key_active", "root_mfa_disabled")


@dataclass
class SweepOutcome:
    accounts: int = 0
    errors: list[AccountError] = field(default_factory=list)  # every failure, a Region's too
    unchecked: set[str] = field(default_factory=set)  # accounts whose sign-ins could not be read
    placed: Placed = field(default_factory=Placed)

    @property
    def new_findings(self) -> list[Finding]:
        return self.placed.new_findings


@dataclass
class _Account:
    """What one sweep learns about one account as its parts come in."""

    state: dict
    cursors: dict[str, datetime | None]
    signins_read: bool = False
    failed: list[AccountError] = field(default_factory=list)
    unstored: set[str] = field(default_factory=set)  # Regions with a page that could not be stored
    pages: dict[str, list[Finding]] = field(default_factory=lambda: defaultdict(list))  # until the Region is read


class Monitor:
    def __init__(
        self,
        store: Store,
        sweeper: Sweeper,
        channel: str | None,
        lookback: timedelta,
        remind_after: timedelta,
        holder: str,
        high_risk: frozenset[str],
        owner_tag: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.store = store
        self.sweeper = sweeper
        self.channel = channel
        self.lookback = lookback
        self.holder = holder
        self.owner_tag = owner_tag
        self.clock = clock
        self.accounts: dict[str, Account] = {}
        self.placement = Placement(target=self.target, remind_after=remind_after, high_risk=high_risk)
        self._lock = threading.Lock()

    # the accounts -----------------------------------------------------------------------------
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
        """The accounts file, the Organization as the store has it, and ROOTCHECK_ACCOUNTS: every
        replica builds the same list, without calling Organizations."""
        accounts = self.sweeper.accounts(self.store.directory.accounts())
        self.accounts = {a.id: a for a in accounts}
        return accounts

    def refresh_directory(self, force: bool = False) -> bool:
        """Read the Organization's accounts and owner tags again when it is time (leader only)."""
        if not self.sweeper.settings.org_discovery:
            return False
        last = self.store.directory.refreshed_at()
        if not force and last is not None and self.clock() - last < DIRECTORY_EVERY:
            return False
        discovered = self.sweeper.discover(self.owner_tag)
        self.store.directory.replace(discovered, self.clock())
        log.info("read %d account(s) of the Organization", len(discovered))
        return True

    # sweeps -----------------------------------------------------------------------------------
    def run_sweep(self, only: Iterable[str] | None = None) -> SweepOutcome:
        """One sweep of every account (or `only` these), recorded in the store."""
        now = self.clock()
        self.refresh_directory()  # no credentials, Organizations denied: no sweep to record
        accounts = self.refresh_accounts()
        sweep_id = self.store.state.sweep_started(self.holder, now)
        if only:
            accounts = [a for a in accounts if a.id in set(only)]
        outcome = SweepOutcome(accounts=len(accounts))
        held: list[Finding] = []
        seen = {a.id: _Account(self.store.state.account(a.id), self.store.cursors.of(a.id)) for a in accounts}

        def part(evidence: Evidence, found: list[Finding]) -> None:
            with self._lock:
                self._absorb(evidence, found, seen[evidence.account.id], now, outcome, held)

        try:
            self.sweeper.sweep(
                accounts,
                window=lambda a, region: Window(self._start(seen[a.id], region, now), now),
                report_due=lambda a: report_due(a.id, seen[a.id].state["report_seen_at"], now, REPORT_CADENCE),
                report_since=lambda a: seen[a.id].state.get("report_seen_at") or now - self.lookback,
                mfa_since=lambda a: seen[a.id].state["mfa_off_since"],
                on_part=part,
            )
        finally:  # a sweep that fails half-way still lets its held findings out
            self._release_held(held, now)
        self.store.state.sweep_finished(
            sweep_id,
            self.clock(),
            outcome.accounts - len(outcome.unchecked),
            outcome.errors,
            len(outcome.new_findings),
            len(outcome.unchecked),
        )
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

    # one part at a time -----------------------------------------------------------------------
    def _absorb(
        self,
        evidence: Evidence,
        found: list[Finding],
        seen: _Account,
        now: datetime,
        outcome: SweepOutcome,
        held: list[Finding],
    ) -> None:
        account = evidence.account.id
        outcome.errors.extend(evidence.errors)
        if evidence.part == "page":
            region = evidence.region or SIGNIN_REGION
            seen.pages[region] += [f for f in found if f.kind != "root_console_login"]
            self._store_region(region, [f for f in found if f.kind == "root_console_login"], seen, now, outcome, held)
        elif evidence.part == "lookups":
            region = evidence.region or SIGNIN_REGION
            self._store_region(region, seen.pages.pop(region, []), seen, now, outcome, held)  # what was read
            self._lookups(account, evidence, seen, now, outcome, held)
        elif evidence.part == "report":
            self._report(account, evidence, found, seen, now, outcome, held)
        else:
            self._done(evidence, seen, now, outcome, held)

    def _lookups(
        self,
        account: str,
        evidence: Evidence,
        seen: _Account,
        now: datetime,
        outcome: SweepOutcome,
        held: list[Finding],
    ) -> None:
        region = evidence.region or SIGNIN_REGION
        if region in seen.unstored:
            evidence.errors.append(
                AccountError(
                    account,
                    "NotStored",
                    "findings read in this Region could not be stored",
                    "see the store's error in the logs",
                    region,
                )
            )
            outcome.errors.append(evidence.errors[-1])
        if not evidence.errors:
            self.store.cursors.advanced(account, region, evidence.window.end if evidence.window else now)
            self.store.alerts.resolve_region_gap(account, region, now)
            seen.signins_read |= region == SIGNIN_REGION
            return
        if region == SIGNIN_REGION:
            seen.failed += evidence.errors
        failures = self.store.cursors.failed(account, region, evidence.errors[0].line())
        if failures >= GAP_AFTER and region != SIGNIN_REGION:  # us-east-1 failing is the account's gap
            gap = self._coverage_gap(account, evidence.errors[0], seen.cursors.get(region), region)
            self._store([gap], now, outcome, held)

    def _report(
        self,
        account: str,
        evidence: Evidence,
        found: list[Finding],
        seen: _Account,
        now: datetime,
        outcome: SweepOutcome,
        held: list[Finding],
    ) -> None:
        if evidence.errors:
            return  # no hygiene finding is resolved without a good report
        self._store(found, now, outcome, held)
        if evidence.report_row is not None:
            self.store.alerts.resolve_absent(account, RESOLVABLE_KINDS, [f.id for f in found], now)
        mfa_off = any(f.kind == "root_mfa_disabled" for f in found)
        report_time = iso_z(evidence.report_time) if evidence.report_time else None
        state = seen.state
        state["mfa_off_since"] = (
            (state["mfa_off_since"] or report_time)
            if mfa_off
            else (None if evidence.report_row is not None else state["mfa_off_since"])
        )
        if evidence.report_time is not None:
            state["report_seen_at"] = evidence.report_time
        self.store.state.report_seen(account, evidence.report_time, state["mfa_off_since"])

    def _done(
        self, evidence: Evidence, seen: _Account, now: datetime, outcome: SweepOutcome, held: list[Finding]
    ) -> None:
        account = evidence.account.id
        if evidence.alias and account in self.accounts and not self.accounts[account].name:
            known = self.accounts[account]
            self.accounts[account] = Account(account, evidence.alias, known.channel, known.role_arn, known.owners)
            self.store.alerts.touch(account)  # alerts posted before the alias was read show it too
        if seen.signins_read and not evidence.errors:
            self.store.state.account_checked(account, now)
            self.store.alerts.resolve_region_gap(account, None, now)
            return
        error = (evidence.errors or seen.failed or [AccountError(account, "NotChecked", "its sign-ins were not read")])[
            0
        ]
        outcome.unchecked.add(account)
        failures = self.store.state.account_failed(account, error.line())
        if failures >= GAP_AFTER:
            since = seen.state.get("last_checked_at")
            self._store([self._coverage_gap(account, error, since, None)], now, outcome, held)

    def _store_region(
        self,
        region: str,
        found: list[Finding],
        seen: _Account,
        now: datetime,
        outcome: SweepOutcome,
        held: list[Finding],
    ) -> None:
        try:
            self._store(found, now, outcome, held)
        except Exception:
            seen.unstored.add(region)  # its cursor must not move past what was never stored
            raise

    def _store(self, found: list[Finding], now: datetime, outcome: SweepOutcome, held: list[Finding]) -> None:
        if not found:
            return
        placed = self.store.alerts.ingest(found, now, self.placement, hold=HELD_KINDS)
        held += [f for f in placed.new_findings if f.kind in HELD_KINDS]
        _merge(outcome.placed, placed)

    def _coverage_gap(self, account: str, error: AccountError, since: datetime | None, region: str | None) -> Finding:
        last = iso_z(since) if since else "never"
        where = f"Region {region} of this account" if region else "this account"
        return Finding(
            id=finding_id("rootcheck", account, "coverage_gap", region or "", last),
            kind="coverage_gap",
            severity="high",
            account_id=account,
            source="rootcheck",
            region=region,
            detail=f"{where[0].upper()}{where[1:]} could not be checked in {GAP_AFTER} sweeps in a row "
            f"(last success: {last}). Last error: {error.code}: {error.message}. "
            f"{error.hint}".strip(),
        )

    def _release_held(self, held: list[Finding], now: datetime) -> None:
        """More than DIGEST_OVER of one kind for one channel go out as one digest; the rest alone."""
        groups: dict[tuple[str, str | None], list[str]] = defaultdict(list)
        for finding in held:
            groups[(finding.kind, self.target(finding.account_id))].append(finding.id)
        for (kind, target), ids in groups.items():
            digest = finding_id("rootcheck", None, "digest", kind, *sorted(ids)) if len(ids) > DIGEST_OVER else None
            self.store.alerts.release_held(ids, now, self.placement, digest_id=digest)

    def _start(self, seen: _Account, region: str, now: datetime) -> datetime:
        cursor = seen.cursors.get(region) or seen.cursors.get(BEFORE_REGIONS)
        return cursor - OVERLAP if cursor else now - self.lookback


def _merge(into: Placed, placed: Placed) -> None:
    into.new_findings += placed.new_findings
    into.opened += placed.opened
    into.changed += placed.changed
    into.waiting += placed.waiting
    into.high_risk += placed.high_risk
