"""A sweep: evidence from the collector, through the pure checks, into findings.

Written against a small Protocol so the scheduler, `/rootcheck scan` and the CLI all run the
same code, and tests can hand it any collector.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Callable, Iterable, Protocol

from bot.checks.cloudtrail import check_record, skip_reason
from bot.checks.credential_report import check_root_row
from bot.models import Account, Evidence, Finding, SweepResult, Window
from bot.timeutil import iso_z


class EvidenceCollector(Protocol):
    def collect(self, accounts: Iterable[Account], windows: Callable[[Account], Window],
                reports: bool | Callable[[Account], bool] = True, on_done: Callable[[Evidence], None] | None = None) -> list[Evidence]: ...


def evidence_findings(evidence: Evidence, report_since: datetime | None,
                      mfa_first_seen: str | None = None) -> list[Finding]:
    """Findings of one account's evidence, each once (two lookups may return the same record)."""
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


def sweep(collector: EvidenceCollector, accounts: Iterable[Account], windows: Callable[[Account], Window],
          report_since: Callable[[Account], datetime | None], reports: bool | Callable[[Account], bool] = True,
          on_done: Callable[[Evidence, list[Finding]], None] | None = None,
          mfa_since: Callable[[Account], str | None] = lambda account: None) -> SweepResult:
    """Check every account; one account's failure is recorded and never stops the others.

    `report_since`: password use at or after it counts; `mfa_since`: when the current run of
    reports first showed MFA off (None: this report is the first).
    """
    result = SweepResult()
    lock = threading.Lock()

    def done(evidence: Evidence) -> None:  # called from the collector's worker threads
        account = evidence.account
        findings = evidence_findings(evidence, report_since(account), mfa_since(account))
        with lock:
            result.findings.extend(findings)
            result.errors.extend(evidence.errors)
            if not evidence.errors:
                result.checked.append(evidence.account.id)
        if on_done:
            on_done(evidence, findings)

    collector.collect(accounts, windows, reports, done)
    return result
