"""A sweep: evidence from the collector, part by part, through the pure checks, into findings.

Written against a small Protocol so the scheduler, `/rootcheck scan` and the CLI all run the
same code, and tests can hand it any collector. Also decides, purely, when an account's
credential report is due.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.checks.cloudtrail import check_record, skip_reason
from bot.checks.credential_report import check_root_row
from bot.models import SIGNIN_REGION, Account, Evidence, Finding, SweepResult, Window
from bot.timeutil import iso_z

REPORT_MARGIN = timedelta(minutes=15)  # more than a sweep interval plus the time AWS takes to make a report
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EvidenceCollector(Protocol):
    def collect(
        self,
        accounts: Iterable[Account],
        window: Callable[[Account, str], Window],
        report_due: Callable[[Account], bool],
        on_part: Callable[[Evidence], None],
    ) -> None: ...


def report_due(
    account_id: str, seen_at: datetime | None, now: datetime, cadence: timedelta, margin: timedelta = REPORT_MARGIN
) -> bool:
    """Whether to fetch the account's credential report in a sweep at `now`.

    `seen_at` is when the last report seen was generated (None: never seen, so due now). AWS makes a
    new report only when the last one is more than `cadence` (4 h) old, so a report is due no sooner.
    Each account has a stable phase on a grid of slots every `cadence + margin`, taken from its id:
    the report is due at its first slot after that. After the first sweep, which fetches every
    report at once, the next fetches spread evenly over the following hours instead of falling in one
    sweep again; and as long as a sweep comes within `margin` of a slot, the report it makes is seen
    before the next slot, so every account keeps its phase, one report per `cadence + margin`.
    """
    if seen_at is None:
        return True
    period = cadence + margin
    phase = period * (int.from_bytes(hashlib.sha256(account_id.encode()).digest()[:8], "big") / 2**64)
    earliest = seen_at + cadence
    return now >= earliest + (_EPOCH + phase - earliest) % period


def evidence_findings(
    evidence: Evidence, report_since: datetime | None, mfa_first_seen: str | None = None
) -> list[Finding]:
    """Findings of one part, each once (us-east-1's two lookups may return the same record)."""
    found: dict[str, Finding] = {}
    for record in evidence.records:
        if skip_reason(record) is None:
            finding = check_record(record, evidence.account.id)
            if finding is not None:
                found.setdefault(finding.id, finding)
    if evidence.report_row is not None:
        first_seen = mfa_first_seen or (iso_z(evidence.report_time) if evidence.report_time else None)
        for finding in check_root_row(evidence.report_row, report_since, first_seen, evidence.account.id):
            found.setdefault(finding.id, finding)
    return list(found.values())


def sweep(
    collector: EvidenceCollector,
    accounts: Iterable[Account],
    window: Callable[[Account, str], Window],
    report_due: Callable[[Account], bool],
    report_since: Callable[[Account], datetime | None],
    mfa_since: Callable[[Account], str | None],
    on_part: Callable[[Evidence, list[Finding]], None],
) -> SweepResult:
    """Check every account; each part's findings go to `on_part` as soon as the part is complete.

    One failed call never hides what the others found. `report_since`: password use at or after it
    counts; `mfa_since`: when the current run of reports first showed MFA off (None: this report is
    the first). An account counts as checked when its us-east-1 lookups succeeded.
    """
    result = SweepResult()
    lock = threading.Lock()
    seen: set[str] = set()  # us-east-1's two lookups may return the same record on different pages

    def part(evidence: Evidence) -> None:  # called from the collector's worker threads
        account = evidence.account
        if evidence.part == "report":
            findings = evidence_findings(evidence, report_since(account), mfa_since(account))
        else:
            findings = evidence_findings(evidence, None)
        with lock:
            findings = [f for f in findings if f.id not in seen]
            seen.update(f.id for f in findings)
            result.findings.extend(findings)
            result.errors.extend(evidence.errors)
            if evidence.part == "lookups" and evidence.region == SIGNIN_REGION and not evidence.errors:
                result.checked.append(account.id)
        on_part(evidence, findings)

    collector.collect(accounts, window, report_due, part)
    return result
