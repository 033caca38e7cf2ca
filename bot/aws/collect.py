"""Gather each account's evidence in parts, each handed over the moment it is complete.

Lookups: `Username=root` in every searched Region (root activity without reading every event), plus
`EventName=ConsoleLogin`, in us-east-1, which is always searched whatever `ROOTCHECK_REGIONS` says: AWS
records every root sign-in and every global-service call there, and a failed root sign-in is not always
attributed to the user name `root`. Each page's records go out as a "page" part the moment the page is
read, so a root sign-in is stored (and posted) without waiting for the rest of the paging or for the
credential report; a Region's "lookups" part follows once all its pages are read, saying whether they
all were (the cursor moves only then).

Every AWS call is one small task on a bounded pool. A call that must wait (its account's LookupEvents
pace, a credential report being generated, a retry's backoff) goes back on the timer instead of holding
a worker. Retries are rootcheck's, per call and so per account: the shared clients make none (see
`AwsSessions`), so one throttled account neither spends another's retries nor holds the workers.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from bot.aws.errors import account_error, is_retryable
from bot.aws.sessions import AwsSessions
from bot.checks.credential_report import parse_report, root_row
from bot.checks.records import Skipped, unwrap
from bot.models import SIGNIN_REGION, Account, AccountError, Evidence, Window
from bot.pacing import Pacer, TaskRunner

log = logging.getLogger(__name__)

PAGE_SIZE = 50
ATTEMPTS = 5  # per call, counting the first; throttling and transient failures only
BACKOFF_CAP = 20.0  # seconds, as botocore's standard mode
ACCOUNTS_PER_WORKER = 16
Task = Callable[[], "float | None"]  # None when done, or the seconds after which to run it again


def searched_regions(regions: Iterable[str]) -> list[str]:
    """The Regions whose lookups run: us-east-1 first and always, then the others as configured."""
    return [SIGNIN_REGION, *dict.fromkeys(r for r in regions if r != SIGNIN_REGION)]


class Collector:
    """Collects evidence for many accounts on one bounded pool, honouring AWS's limits."""

    def __init__(
        self,
        sessions: AwsSessions,
        regions: list[str],
        workers: int = 16,
        *,
        lookup_interval: float = 1.05,
        report_poll: float = 2.0,
        report_deadline: float = 300.0,
        retry_base: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.sessions = sessions
        self.regions = regions
        self.workers = workers
        self.report_poll = report_poll
        self.report_deadline = report_deadline
        self.retry_base = retry_base
        self.failed_callbacks = 0  # on_part raised: logged and counted, never stops the sweep
        self._clock = clock
        self._pacer = Pacer(lookup_interval, clock)  # per (account, Region); every attempt passes it
        self._aliases: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def collect(
        self,
        accounts: Iterable[Account],
        window: Callable[[Account, str], Window],
        report_due: Callable[[Account], bool],
        on_part: Callable[[Evidence], None],
    ) -> None:
        """Hand every account's parts to `on_part` (from worker threads): a "lookups" part per Region
        searched, a "report" part when `report_due`, and last, always, one "done" part."""
        runner = TaskRunner(self.workers, self._clock)
        # Accounts in flight, bounded so memory stays flat. An account mostly waits (a second between its
        # lookups, seconds for its report), so keeping every worker busy takes several per worker.
        admission = threading.BoundedSemaphore(self.workers * ACCOUNTS_PER_WORKER)
        try:
            for account in accounts:
                admission.acquire()
                _Job(
                    self,
                    runner,
                    account,
                    window,
                    report_due(account),
                    functools.partial(self._deliver, on_part),
                    admission.release,
                ).start()
            runner.wait()
        finally:
            runner.close()

    def _deliver(self, on_part: Callable[[Evidence], None], evidence: Evidence) -> None:
        try:
            on_part(evidence)
        except Exception:  # noqa: BLE001 - the caller's bug must not stall the sweep or vanish
            log.exception("handing over the %s part of account %s failed", evidence.part, evidence.account.id)
            with self._lock:
                self.failed_callbacks += 1

    def _backoff(self, attempt: int) -> float:
        return random.random() * min(self.retry_base * 2 ** (attempt - 1), BACKOFF_CAP)


class _Part:
    """One part of an account's evidence and the number of its tasks still running."""

    __slots__ = ("evidence", "pending")

    def __init__(self, evidence: Evidence):
        self.evidence = evidence
        self.pending = 0


class _Job:
    """One account's tasks: hands over each part when its last task ends, and "done" after all."""

    def __init__(
        self,
        collector: Collector,
        runner: TaskRunner,
        account: Account,
        window: Callable[[Account, str], Window],
        wants_report: bool,
        deliver: Callable[[Evidence], None],
        release: Callable[[], None],
    ):
        self.c = collector
        self.runner = runner
        self.account = account
        self.window = window
        self.wants_report = wants_report
        self.deliver = deliver
        self.release = release
        self.done = _Part(Evidence(account, "done", alias=account.name or collector._aliases.get(account.id)))
        self._pending = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        self.spawn([(self._open, self.done)])

    def spawn(self, tasks: list[tuple[Task, _Part]]) -> None:
        """Count every task before any can end, so no part is handed over while more is coming."""
        with self._lock:
            for _, part in tasks:
                part.pending += 1
            self._pending += len(tasks)
        for task, part in tasks:
            self.runner.submit(functools.partial(self._run, task, part, 1))

    def _run(self, task: Task, part: _Part, attempt: int, runner: TaskRunner) -> None:
        again = None
        try:
            with self.c.sessions.acting_as(self.account):
                again = task()
        except Exception as exc:  # noqa: BLE001 - AWS errors and surprises alike stay this account's
            if attempt < ATTEMPTS and is_retryable(exc):
                again, attempt = self.c._backoff(attempt), attempt + 1
            else:
                self.add_error(
                    part, account_error(self.account.id, exc, part.evidence.region, self.c.sessions.role_name)
                )
        if again is not None:
            runner.submit(functools.partial(self._run, task, part, attempt), again)
            return
        self._finish(part)

    def add_error(self, part: _Part, error: AccountError) -> None:
        with self._lock:
            part.evidence.errors.append(error)

    def _finish(self, part: _Part) -> None:
        with self._lock:
            part.pending -= 1
            complete = part.pending == 0 and part is not self.done
        if complete:  # before the job's count drops, so "done" always comes last
            self.deliver(part.evidence)
        with self._lock:
            self._pending -= 1
            finished = self._pending == 0
        if finished:
            try:
                self.deliver(self.done.evidence)
            finally:
                self.release()

    def _open(self) -> float | None:
        wait = self.c.sessions.assume_wait(self.account)
        if wait > 0:
            return wait
        self.c.sessions.open(self.account)
        every = self.c.regions == ["all"]  # us-east-1 at once; the others once ListRegions has named them
        tasks = self._lookups(searched_regions([] if every else self.c.regions))
        if every:
            tasks.append((self._list_regions, self.done))
        if self.done.evidence.alias is None and self.account.id not in self.c._aliases:
            tasks.append((self._alias, self.done))
        if self.wants_report:
            report = _Part(Evidence(self.account, "report"))
            tasks.append((_Report(self, report), report))
        self.spawn(tasks)
        return None

    def _lookups(self, regions: list[str]) -> list[tuple[Task, _Part]]:
        tasks: list[tuple[Task, _Part]] = []
        for region in regions:
            part = _Part(Evidence(self.account, "lookups", region=region, window=self.window(self.account, region)))
            tasks.append((_Lookup(self, part, "Username", "root"), part))
            if region == SIGNIN_REGION:
                tasks.append((_Lookup(self, part, "EventName", "ConsoleLogin"), part))
        return tasks

    def _list_regions(self) -> None:
        client = self.c.sessions.client("account")
        regions = []
        for page in client.get_paginator("list_regions").paginate(
            RegionOptStatusContains=["ENABLED", "ENABLED_BY_DEFAULT"]
        ):
            regions += [item["RegionName"] for item in page.get("Regions", [])]
        self.spawn(self._lookups(searched_regions(sorted(regions))[1:]))

    def _alias(self) -> None:
        aliases = self.c.sessions.client("iam").list_account_aliases().get("AccountAliases", [])
        self.done.evidence.alias = self.c._aliases[self.account.id] = aliases[0] if aliases else None


class _Lookup:
    """One LookupEvents page for (account, Region, attribute); spawns the next page."""

    def __init__(self, job: _Job, part: _Part, key: str, value: str, token: str | None = None):
        self.job, self.part, self.key, self.value, self.token = job, part, key, value, token

    def __call__(self) -> float | None:
        job, evidence = self.job, self.part.evidence
        wait = job.c._pacer.delay((job.account.id, evidence.region))
        if wait > 0:
            return wait
        window = evidence.window
        assert window is not None  # every lookups part is made with its window
        params: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": self.key, "AttributeValue": self.value}],
            "StartTime": window.start,
            "EndTime": window.end,
            "MaxResults": PAGE_SIZE,
        }
        if self.token:
            params["NextToken"] = self.token
        page = job.c.sessions.client("cloudtrail", evidence.region).lookup_events(**params)
        self._absorb(page.get("Events", []))
        if page.get("NextToken"):
            job.spawn([(_Lookup(job, self.part, self.key, self.value, page["NextToken"]), self.part)])
        return None

    def _absorb(self, events: list[dict]) -> None:
        """Hand the page's records over now: one page of a busy Region may hold a sign-in."""
        records, skipped = [], 0
        for event in events:
            for item in unwrap({"CloudTrailEvent": event.get("CloudTrailEvent", "")}):
                if isinstance(item, Skipped):
                    skipped += 1
                else:
                    records.append(item)
        with self.job._lock:
            self.part.evidence.skipped += skipped
        if records:
            evidence = self.part.evidence
            self.job.deliver(
                Evidence(self.job.account, "page", region=evidence.region, window=evidence.window, records=records)
            )


class _Report:
    """The credential report: one GenerateCredentialReport, then GetCredentialReport when it is ready.

    Generate makes a new report only when the last one is more than 4 hours old (which is why the
    report is asked for only when due) and says whether it is COMPLETE. When it is not, a Get now is
    known to fail, so the Get waits `report_poll` on the timer, and again while AWS answers
    ReportInProgress, up to `report_deadline`.
    """

    def __init__(self, job: _Job, part: _Part):
        self.job, self.part = job, part
        self.started = job.c._clock()
        self.generated = False

    def __call__(self) -> float | None:
        c = self.job.c
        iam = c.sessions.client("iam")
        if not self.generated:
            complete = iam.generate_credential_report().get("State") == "COMPLETE"
            self.generated = True
            if not complete:
                return c.report_poll
        try:
            report = iam.get_credential_report()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ReportInProgress":
                raise
            if c._clock() - self.started <= c.report_deadline:
                return c.report_poll
            self.job.add_error(
                self.part,
                AccountError(
                    self.job.account.id,
                    "ReportTimeout",
                    f"the credential report was not ready after {c.report_deadline:.0f}s",
                    "AWS is slow to generate it; the next sweep tries again",
                ),
            )
            return None
        evidence = self.part.evidence
        evidence.report_row = root_row(parse_report(report["Content"].decode("utf-8", "replace")))
        evidence.report_time = report.get("GeneratedTime")
        return None
