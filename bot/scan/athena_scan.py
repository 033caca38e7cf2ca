"""`rootcheck scan --athena`: run the planned queries one after another and judge their rows.

An `OfflineScan` whose documents are query results: the same detectors (`_check_records`), the same
window, the same de-duplication and summary, so `command.py` prints it as it prints a file scan.
A large results file is cut into slices of whole records and judged on the same kind of process
pool as trail files (both cores, a bounded number of slices in flight).
Each query is followed with backoff; the data it scans counts against `--max-scan-gb` for the
whole scan (a workgroup's own cutoff is per query and shared, so rootcheck stops the query itself
when the total would pass the cap), and Ctrl-C stops the running query before rootcheck exits.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import chain, islice
from typing import Protocol

from bot.aws.athena import AthenaError, QueryStatus
from bot.models import Finding
from bot.scan.athena import Query
from bot.scan.athena_rows import read_rows, slices
from bot.scan.offline import IN_FLIGHT_PER_WORKER, DocumentResult, OfflineScan, Window, _check_records, _pool_context

PRICE_PER_TB = 5.0  # US dollars per terabyte scanned (Athena SQL, most Regions)
MIN_BILLED = 10 * 10**6  # Athena bills at least 10 MB a query
FIRST_POLL, BACKOFF, LONGEST_POLL = 0.25, 1.6, 5.0  # seconds between GetQueryExecution calls
SLICE_BYTES = 1 << 20  # a pool task: about 1 MiB of results (some 1,500 rows); a smaller file is judged here
RUN = 128  # records judged together (see `judge_rows`)
_DONE = {"SUCCEEDED", "FAILED", "CANCELLED"}


class Engine(Protocol):
    """What the scan needs of Athena (`bot.aws.athena.Athena`)."""

    def start(self, sql: str, database: str) -> str: ...
    def status(self, query_id: str) -> QueryStatus: ...
    def stop(self, query_id: str) -> None: ...
    def results(self, location: str) -> Iterator[bytes]: ...


class Stopped(Exception):
    """The scan cannot go on (a failed, cancelled or capped query): one line, exit status 2."""


class AthenaScan(OfflineScan):
    """Runs `queries` in order; yields each finding once, as each query's results are read."""

    def __init__(
        self,
        engine: Engine,
        database: str,
        queries: list[Query],
        window: Window,
        warn: Callable[[str], None],
        progress: Callable[[int], None] | None = None,
        max_bytes: int = 100 * 10**9,
        sleep: Callable[[float], None] = time.sleep,
        workers: int | None = None,
        slice_bytes: int = SLICE_BYTES,
    ):
        """`progress(rows)` is called when a query's results have been read."""
        super().__init__(window, warn, workers=workers)
        self.engine, self.database, self.queries, self.progress = engine, database, queries, progress
        self.max_bytes, self.sleep, self.slice_bytes = max_bytes, sleep, slice_bytes
        self.ran = 0  # queries started
        self.scanned = 0  # bytes, all queries so far
        self.billed = 0  # bytes, with Athena's 10 MB minimum per query

    def run_queries(self) -> Iterator[Finding]:
        try:
            for number, query in enumerate(self.queries, 1):
                where = f"athena: query {number} of {len(self.queries)} ({query.label})"
                if self.scanned > self.max_bytes:
                    raise Stopped(
                        f"{where}: not started: the scan has read {_size(self.scanned)}, over "
                        f"--max-scan-gb {self.max_bytes / 1e9:g}; narrow --since/--until/--account, "
                        "or raise --max-scan-gb"
                    )
                yield from self._judge(self._execute(query, where), where)
        except (Stopped, AthenaError) as exc:
            self._input_error(str(exc))

    def cost_line(self) -> str:
        """Data scanned and what it costs, for the summary."""
        return (
            f"athena: ran {self.ran} of {len(self.queries)} quer{'y' if len(self.queries) == 1 else 'ies'}, "
            f"{_size(self.scanned)} scanned, about {_dollars(self.billed)} at ${PRICE_PER_TB:.0f}/TB"
        )

    def _execute(self, query: Query, where: str) -> str:
        """Start a query and follow it to the end; the results' location, or Stopped."""
        query_id = self.engine.start(query.sql, self.database)
        self.ran += 1
        self._warn(f"{where}: started {query_id}")
        started = time.monotonic()
        try:
            status = self._follow(query_id, where)
        except KeyboardInterrupt:
            self.engine.stop(query_id)
            self._warn(f"rootcheck: interrupted: stopped Athena query {query_id}")
            raise
        self.scanned += status.scanned
        self.billed += max(status.scanned, MIN_BILLED)
        seconds = time.monotonic() - started
        self._warn(
            f"{where}: {status.state} in {seconds:.1f}s, {_size(status.scanned)} scanned "
            f"(about {_dollars(max(status.scanned, MIN_BILLED))})"
        )
        if status.state == "FAILED":
            raise Stopped(
                f"{where}: Athena query {query_id} FAILED: {status.reason or 'no reason given'}{explain(status.reason)}"
            )
        if status.state == "CANCELLED":
            raise Stopped(
                f"{where}: Athena query {query_id} was cancelled by Athena, not by rootcheck: "
                f"{status.reason or 'no reason given'} (a workgroup's per-query data usage control "
                "cancels a query that scans more than its limit: raise it, or name another workgroup "
                "in --athena WORKGROUP/DATABASE.TABLE; or someone stopped it in the console)"
            )
        if not status.location:
            raise Stopped(
                f"{where}: Athena query {query_id} succeeded but gave no results location (workgroups "
                "with Athena-managed query results are not supported: use one with an S3 location)"
            )
        return status.location

    def _follow(self, query_id: str, where: str) -> QueryStatus:
        """Poll with backoff until the query ends; stop it when the scan's total passes the cap."""
        delay = FIRST_POLL
        while True:
            status = self.engine.status(query_id)
            if status.state in _DONE:
                return status
            if self.scanned + status.scanned > self.max_bytes:
                self.engine.stop(query_id)
                total = self.scanned + status.scanned
                self.scanned, self.billed = total, self.billed + max(status.scanned, MIN_BILLED)
                raise Stopped(
                    f"{where}: stopped Athena query {query_id}: the scan had read {_size(total)} "
                    f"(about {_dollars(self.billed)}), over --max-scan-gb {self.max_bytes / 1e9:g}; "
                    "narrow --since/--until/--account, or raise --max-scan-gb"
                )
            self.sleep(delay)
            delay = min(delay * BACKOFF, LONGEST_POLL)

    def _judge(self, location: str, where: str) -> Iterator[Finding]:
        """The findings of one results file, judged in slices (on the pool when there are several)."""
        parts = slices(self.engine.results(location), self.slice_bytes)
        header, newline, rows = next(parts, b"").partition(b"\n")
        header += newline
        records = 0
        try:
            for number, result in enumerate(self._row_results(header, location, chain([rows], parts))):
                records += result.records
                yield from self._absorb(result)
                if number:
                    self.summary.documents -= 1  # the slices of one results file are one file
        except ValueError as exc:
            raise Stopped(f"{where}: cannot read the results {location}: {exc}") from None
        self._warn(f"{where}: {records} root row(s) read from {location}")
        if self.progress:
            self.progress(records)

    def _row_results(self, header: bytes, name: str, parts: Iterator[bytes]) -> Iterator[DocumentResult]:
        head = list(islice(parts, 2))
        if len(head) < 2 or self._workers < 2:
            for data in chain(head, parts):
                yield judge_rows(header, data, self.window, name)
            return
        pending: deque[Future] = deque()
        pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=_pool_context())
        try:
            for data in chain(head, parts):
                pending.append(pool.submit(judge_rows, header, data, self.window, name))
                if len(pending) >= self._workers * IN_FLIGHT_PER_WORKER:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # also on Ctrl-C or an error: queued slices are dropped, not judged
            pool.shutdown(wait=True, cancel_futures=True)


def judge_rows(header: bytes, data: bytes, window: Window, name: str) -> DocumentResult:
    """One slice of a results file (whole records) through the detectors; runs in pool workers.

    The rebuilt records go through the file scan's own loop for a trail file's records
    (`_check_records`), in short runs of one trail file's records: long enough to spread the
    call, short enough that the records judged are still in the processor's cache.
    """
    result = DocumentResult(name)
    run: list[dict] = []
    hint: str | None = None
    collecting = gc.isenabled()
    gc.disable()  # as for a trail file: records hold no cycles, and collections while building them only cost
    try:
        for record, record_hint in read_rows(header, data):
            if run and (record_hint != hint or len(run) == RUN):
                _check_records(run, hint, window, result)
                run = []
            hint = record_hint
            run.append(record)
        if run:
            _check_records(run, hint, window, result)
    finally:
        if collecting:
            gc.enable()
    return result


def explain(reason: str) -> str:
    """The fix for the Athena failures an operator can cause, from Athena's own reason text."""
    text = reason.lower()
    if "access denied" in text or "accessdenied" in text or "permission denied" in text or "forbidden" in text:
        return (
            " (the credentials need s3:GetObject and s3:ListBucket on the trail bucket, kms:Decrypt on its "
            "key if it has one, and s3:PutObject on the query result location; see the Athena policy in "
            "deploy/README.md)"
        )
    if "constraint_violation" in text or "injected" in text:
        return " (the table's injected partition needs its values: pass --account ID)"
    if "table_not_found" in text or "does not exist" in text or "schema_not_found" in text:
        return " (check DATABASE.TABLE and AWS_DEFAULT_REGION; rootcheck athena-table prints a table's DDL)"
    return " (see the query in the Athena console's recent queries for details)"


def _size(count: int) -> str:
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if count >= scale:
            return f"{count / scale:.2f} {unit}"
    return f"{count} B"


def _dollars(count: int) -> str:
    return f"${count / 10**12 * PRICE_PER_TB:.4f}" if count < 10**10 else f"${count / 10**12 * PRICE_PER_TB:.2f}"
