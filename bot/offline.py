"""`rootcheck scan --events/--credential-report`: the pure checks over files, at parse speed.

Each document is read, parsed, checked and dropped, so memory does not grow with the archive;
only finding ids are kept, to print each finding once. Large inputs are spread over a process
pool (both cores), with a bounded number of documents in flight.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import chain
from datetime import datetime, timedelta
from typing import Callable, Iterable, Iterator

from bot.checks.cloudtrail import check_record, skip_reason
from bot.checks.credential_report import check_root_row, parse_report, root_row
from bot.checks.records import Skipped, account_from_path, date_from_path, parse_document
from bot.inputs import Document, InputError, iter_documents, read_bytes
from bot.models import Finding
from bot.timeutil import parse_time

POOL_THRESHOLD = 8  # documents: below this a process pool costs more than it saves
MAX_WARNINGS_PER_FILE = 5


@dataclass(frozen=True)
class Window:
    """What the user asked to see: a time window (either end open) and an account filter."""

    since: datetime | None = None
    until: datetime | None = None
    accounts: frozenset[str] = frozenset()

    def keeps_path(self, path: str) -> bool:
        """Prune a delivery-day folder wholly outside the window (a day's slack for late delivery)."""
        day = date_from_path(path)
        if day is None:
            return True
        if self.since is not None and day < self.since.date():
            return False
        return self.until is None or day <= self.until.date() + timedelta(days=1)

    def keeps(self, finding: Finding) -> bool:
        if self.accounts and finding.account_id not in self.accounts:
            return False
        moment = parse_time(finding.event_time) if finding.event_time else None
        if moment is None:  # unreadable eventTime: kept, fail safe
            return True
        return (self.since is None or moment >= self.since) and (self.until is None or moment <= self.until)


@dataclass
class DocumentResult:
    name: str
    records: int = 0
    skipped: int = 0
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    first_time: str | None = None
    last_time: str | None = None


@dataclass
class Summary:
    documents: int = 0
    records: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    by_kind: Counter = field(default_factory=Counter)
    by_account: Counter = field(default_factory=Counter)
    first_time: str | None = None
    last_time: str | None = None

    def add(self, result: DocumentResult) -> None:
        self.documents += 1
        self.records += result.records
        self.skipped += result.skipped
        if result.error:
            self.errors.append(result.error)
        if result.first_time and (self.first_time is None or result.first_time < self.first_time):
            self.first_time = result.first_time
        if result.last_time and (self.last_time is None or result.last_time > self.last_time):
            self.last_time = result.last_time


def analyse_events(document: Document, window: Window) -> DocumentResult:
    """Findings of one CloudTrail document. Runs in worker processes: plain data in and out."""
    result = DocumentResult(document.name)
    try:
        items = parse_document(read_bytes(document))
        hint = account_from_path(document.name)
        for item in items:
            _check_item(item, hint, window, result)
    except (InputError, ValueError) as exc:
        result.error = str(exc) if isinstance(exc, InputError) else f"{document.name}: {exc}"
    return result


def analyse_report(document: Document, window: Window) -> DocumentResult:
    """Findings of one credential report CSV; offline, `--since` is the start of password use."""
    result = DocumentResult(document.name)
    try:
        rows = parse_report(read_bytes(document).decode("utf-8", "replace"))
    except (InputError, ValueError) as exc:
        result.error = str(exc) if isinstance(exc, InputError) else f"{document.name}: {exc}"
        return result
    result.records = len(rows)
    row = root_row(rows)
    if row is None:
        result.skipped += 1
        result.warnings.append(f"{document.name}: no <root_account> row")
        return result
    result.findings = [f for f in check_root_row(row, window.since) if window.keeps(f)]
    return result


class OfflineScan:
    """Runs the analysis over every input and yields each finding once, as it is found."""

    def __init__(self, window: Window, warn: Callable[[str], None],
                 progress: Callable[[DocumentResult], None] | None = None, workers: int | None = None):
        self.window = window
        self.summary = Summary()
        self._warn = warn
        self._progress = progress
        self._workers = workers or os.cpu_count() or 1
        self._seen: set[str] = set()

    def run(self, event_specs: Iterable[str], report_specs: Iterable[str]) -> Iterator[Finding]:
        for spec in report_specs:
            for document in iter_documents(spec, self._input_error):
                yield from self._absorb(analyse_report(document, self.window))
        documents = (doc for spec in event_specs
                     for doc in iter_documents(spec, self._input_error, self.window.keeps_path))
        for result in self._results(documents):
            yield from self._absorb(result)

    def _results(self, documents: Iterator[Document]) -> Iterator[DocumentResult]:
        head = []
        for document in documents:
            head.append(document)
            if len(head) >= POOL_THRESHOLD:
                break
        if len(head) < POOL_THRESHOLD or self._workers < 2:
            for document in chain(head, documents):
                yield analyse_events(document, self.window)
            return
        with ProcessPoolExecutor(max_workers=self._workers) as pool:
            pending: deque[Future] = deque()
            for document in chain(head, documents):
                pending.append(pool.submit(analyse_events, document, self.window))
                if len(pending) >= self._workers * 4:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def _absorb(self, result: DocumentResult) -> Iterator[Finding]:
        self.summary.add(result)
        if result.error:
            self._warn(f"error: {result.error}")
        for warning in result.warnings:
            self._warn(f"warning: {warning}")
        if self._progress:
            self._progress(result)
        for finding in result.findings:
            if finding.id not in self._seen:
                self._seen.add(finding.id)
                self.summary.by_kind[finding.kind] += 1
                self.summary.by_account[finding.account_id or "unknown"] += 1
                yield finding

    def _input_error(self, message: str) -> None:
        self.summary.errors.append(message)
        self._warn(f"error: {message}")


def _check_item(item: dict | Skipped, hint: str | None, window: Window, result: DocumentResult) -> None:
    reason = item.reason if isinstance(item, Skipped) else skip_reason(item)
    if reason is not None:
        result.skipped += 1
        if len(result.warnings) < MAX_WARNINGS_PER_FILE:
            result.warnings.append(f"{result.name}: record skipped: {reason}")
        return
    result.records += 1
    when = item.get("eventTime")
    if isinstance(when, str) and when[:1].isdigit():
        if result.first_time is None or when < result.first_time:
            result.first_time = when
        if result.last_time is None or when > result.last_time:
            result.last_time = when
    finding = check_record(item, hint)
    if finding is not None and window.keeps(finding):
        result.findings.append(finding)
