"""`rootcheck scan --events/--credential-report`: the pure checks over files, at parse speed.

Each document is read, parsed, checked and dropped, so memory does not grow with the archive;
only finding ids are kept, to print each finding once. Large inputs are spread over a process
pool (both cores), with a bounded number of documents in flight.

Speed: parsing (orjson) is most of the cost, so a plain trail file's records go through a fast
loop that only counts them and notes their time, and hands the rare record whose
`userIdentity.type` is not a common non-root type to the detectors; anything unusual (other
envelopes, odd field types) takes the general path, so the findings and counts are the same.
"""

from __future__ import annotations

import gc
import os
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

from orjson import loads as _loads

from bot.checks.cloudtrail import check_record, skip_reason
from bot.checks.credential_report import check_root_row, parse_report, root_row
from bot.checks.records import Skipped, account_from_path, date_from_path, parse_document, unwrap
from bot.models import Document, Finding
from bot.scan.inputs import InputError, iter_documents, read_bytes
from bot.timeutil import parse_time

POOL_THRESHOLD = 8  # documents: below this a process pool costs more than it saves
MAX_WARNINGS_PER_FILE = 5
BATCH_BYTES = 128 * 1024  # a pool task is one document, or several small ones up to this many bytes
BATCH_DOCUMENTS = 64
IN_FLIGHT_PER_WORKER = 3  # tasks queued per worker: keeps both cores busy, memory bounded

# userIdentity.type values that are never root: the fast path skips them without a detector call.
_NOT_ROOT = frozenset(
    {
        "IAMUser",
        "AssumedRole",
        "AWSService",
        "AWSAccount",
        "FederatedUser",
        "SAMLUser",
        "WebIdentityUser",
        "IdentityCenterUser",
        "Directory",
        "Unknown",
    }
)


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
    collecting = gc.isenabled()
    gc.disable()  # a parsed file is a tree without cycles: collections while building it only cost time
    try:
        data = read_bytes(document)
        hint = account_from_path(document.name)
        value = _parse(data)
        if value is None:  # JSON Lines, or not JSON: parse_document says which
            for item in parse_document(data):
                _check_item(item, hint, window, result)
        elif type(value) is dict and type(value.get("Records")) is list:  # a trail file
            del data
            _check_records(value["Records"], hint, window, result)
        else:
            for item in unwrap(value):
                _check_item(item, hint, window, result)
    except (InputError, ValueError) as exc:
        result.error = str(exc) if isinstance(exc, InputError) else f"{document.name}: {exc}"
    except (RecursionError, MemoryError) as exc:  # absurd nesting or size: this file only
        result.error = f"{document.name}: cannot be analysed ({type(exc).__name__})"
    finally:
        if collecting:
            gc.enable()
    return result


def analyse_batch(documents: list[Document], window: Window) -> list[DocumentResult]:
    """One pool task: a large document, or a few small ones (less inter-process traffic per file)."""
    return [analyse_events(document, window) for document in documents]


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

    def __init__(
        self,
        window: Window,
        warn: Callable[[str], None],
        progress: Callable[[DocumentResult], None] | None = None,
        workers: int | None = None,
    ):
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
        documents = (
            doc for spec in event_specs for doc in iter_documents(spec, self._input_error, self.window.keeps_path)
        )
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
        yield from self._pooled(_batches(chain(head, documents)))

    def _pooled(self, batches: Iterator[list[Document]]) -> Iterator[DocumentResult]:
        """Batches on a process pool, results in input order, a bounded number in flight."""
        from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415 - only large scans pay for it
        from concurrent.futures.process import BrokenProcessPool  # noqa: PLC0415

        pending: deque = deque()
        pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=_pool_context())
        try:
            for batch in batches:
                pending.append((batch, None))  # queued first: a broken pool at submit loses nothing
                pending[-1] = (batch, pool.submit(analyse_batch, batch, self.window))
                if len(pending) >= self._workers * IN_FLIGHT_PER_WORKER:
                    yield from pending[0][1].result()
                    pending.popleft()
            while pending:
                yield from pending[0][1].result()
                pending.popleft()
            return
        except BrokenProcessPool:  # a worker was killed (out of memory?): finish in this process
            self._warn("warning: a worker process died; reading the remaining files in this process")
        finally:  # also on Ctrl-C or an early close: queued work is dropped, not finished
            pool.shutdown(wait=True, cancel_futures=True)
        for batch in chain((batch for batch, _ in pending), batches):
            for document in batch:
                yield analyse_events(document, self.window)

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


def _parse(data: bytes) -> Any:
    """The document as one JSON value, or None when it is not one (JSON Lines, or not JSON)."""
    try:
        return _loads(data)
    except ValueError:  # orjson.JSONDecodeError and json.JSONDecodeError are ValueErrors
        return None


def _check_records(items: list, hint: str | None, window: Window, result: DocumentResult) -> None:
    """`_check_item` for every record `unwrap` finds in a trail file's Records, done faster.

    A plain record (a dict with a `userIdentity` object, non-empty string `type` and `eventName`,
    no envelope keys) is what `unwrap` yields as is and `skip_reason` accepts: it is counted, its
    time noted, and only a record whose type is not a common non-root one meets the detectors.
    Any other item takes the general path, so results are exactly those of `_check_item`.
    """
    records = 0
    first, last = result.first_time, result.last_time
    for item in items:
        if type(item) is dict:
            identity = item.get("userIdentity")
            if (
                type(identity) is dict
                and "Records" not in item
                and "Events" not in item
                and "CloudTrailEvent" not in item
            ):
                kind = identity.get("type")
                name = item.get("eventName")
                if type(kind) is str and kind and type(name) is str and name:
                    records += 1
                    when = item.get("eventTime")
                    if type(when) is str and when[:1].isdigit():
                        if first is None or when < first:
                            first = when
                        if last is None or when > last:
                            last = when
                    if kind in _NOT_ROOT:
                        continue
                    finding = check_record(item, hint)
                    if finding is not None and window.keeps(finding):
                        result.findings.append(finding)
                    continue
        result.records += records
        result.first_time, result.last_time = first, last
        records = 0
        for each in unwrap(item):
            _check_item(each, hint, window, result)
        first, last = result.first_time, result.last_time
    result.records += records
    result.first_time, result.last_time = first, last


def _batches(documents: Iterator[Document]) -> Iterator[list[Document]]:
    batch: list[Document] = []
    size = 0
    for document in documents:
        batch.append(document)
        size += _size(document)
        if size >= BATCH_BYTES or len(batch) >= BATCH_DOCUMENTS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _size(document: Document) -> int:
    if document.data is not None:
        return len(document.data)
    try:
        return os.stat(document.path).st_size  # type: ignore[arg-type]
    except (OSError, TypeError):
        return BATCH_BYTES  # alone in its task; the worker reports why it cannot be read


def _pool_context():
    """fork on Linux: workers start in milliseconds with everything imported.

    Workers only run the pure analysis (no logging, no shared streams, nothing of the fetch
    threads), so forking while S3 fetch or progress threads run is safe; spawn or forkserver
    would re-import the program in each worker.
    """
    import multiprocessing  # noqa: PLC0415

    return multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None


def _check_item(item: dict | Skipped, hint: str | None, window: Window, result: DocumentResult) -> None:
    reason = item.reason if isinstance(item, Skipped) else skip_reason(item)
    if reason is not None or isinstance(item, Skipped):
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
