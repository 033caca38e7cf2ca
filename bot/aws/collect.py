"""Gather each account's evidence: root CloudTrail records and the credential report's root row.

Lookups: `Username=root` in every searched Region (root activity without reading every event),
plus `EventName=ConsoleLogin` in us-east-1, where AWS records sign-ins (a failed root sign-in is
not always attributed to the user name `root`). Each page is one paced task; a slow or failing
account only ever costs its own calls.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Callable, Iterable

from botocore.exceptions import ClientError

from bot.aws.errors import account_error
from bot.pacing import Pacer, TaskRunner
from bot.aws.sessions import AwsSessions
from bot.checks.credential_report import parse_report, root_row
from bot.checks.records import Skipped, unwrap
from bot.models import Account, AccountError, Evidence, Window
from bot.timeutil import utcnow

SIGNIN_REGION = "us-east-1"
PAGE_SIZE = 50
REPORT_MAX_AGE = timedelta(hours=4)


class Collector:
    """Collects evidence for many accounts on one bounded pool, honouring AWS's limits."""

    def __init__(self, sessions: AwsSessions, regions: list[str], workers: int = 16, *,
                 lookup_interval: float = 1.05, report_poll: float = 2.0, report_deadline: float = 300.0,
                 clock: Callable[[], float] = time.monotonic):
        self.sessions = sessions
        self.regions = regions
        self.workers = workers
        self.lookup_interval = lookup_interval
        self.report_poll = report_poll
        self.report_deadline = report_deadline
        self._clock = clock
        self._pacer = Pacer(lookup_interval, clock)  # schedules lookups without holding a worker
        self._gate = Pacer(min(lookup_interval, 1.0), clock)  # guards each HTTP attempt, retries too
        self._aliases: dict[str, str | None] = {}
        self._generated: dict[str, datetime] = {}

    def collect(self, accounts: Iterable[Account], windows: Callable[[Account], Window],
                reports: bool | Callable[[Account], bool] = True,
                on_done: Callable[[Evidence], None] | None = None) -> list[Evidence]:
        runner = TaskRunner(self.workers, self._clock)
        admission = threading.BoundedSemaphore(self.workers * 4)
        results: list[Evidence] = []
        try:
            for account in accounts:
                admission.acquire()
                wants_report = reports(account) if callable(reports) else reports
                job = _Job(self, Evidence(account), windows(account), wants_report,
                           lambda ev: (results.append(ev), on_done and on_done(ev), admission.release()))
                job.start(runner)
            runner.wait()
        finally:
            runner.close()
        return results


class _Job:
    """One account's tasks; calls `finish` once when the last of them ends."""

    def __init__(self, collector: Collector, evidence: Evidence, window: Window, reports: bool,
                 finish: Callable[[Evidence], None]):
        self.c = collector
        self.ev = evidence
        self.window = window
        self.reports = reports
        self._finish = finish
        self._pending = 0
        self._lock = threading.Lock()

    def start(self, runner: TaskRunner) -> None:
        self._spawn(runner, self._open_task)

    def _open_task(self, runner: TaskRunner) -> None:
        self.c.sessions.open(self.ev.account)
        self._spawn(runner, self._regions_task if self.c.regions == ["all"] else self._lookups_for(self.c.regions))
        if self.ev.account.id not in self.c._aliases:
            self._spawn(runner, self._alias_task)
        else:
            self.ev.alias = self.c._aliases[self.ev.account.id]
        if self.reports:
            self._spawn(runner, self._report_task(self.c._clock()))

    def _spawn(self, runner: TaskRunner, task: Callable, delay: float = 0.0) -> None:
        with self._lock:
            self._pending += 1
        runner.submit(lambda r: self._guarded(r, task), delay)

    def _guarded(self, runner: TaskRunner, task: Callable) -> None:
        try:
            task(runner)
        except Exception as exc:  # noqa: BLE001 - AWS errors and surprises alike stay this account's
            self._fail(exc, getattr(task, "region", None))
        finally:
            with self._lock:
                self._pending -= 1
                done = self._pending == 0
            if done:
                self._finish(self.ev)

    def _fail(self, exc: Exception, region: str | None) -> None:
        error = account_error(self.ev.account.id, exc, region, self.c.sessions.role_name)
        with self._lock:
            self.ev.errors.append(error)

    def _regions_task(self, runner: TaskRunner) -> None:
        client = self.c.sessions.client(self.ev.account, "account")
        regions = []
        for page in client.get_paginator("list_regions").paginate(
                RegionOptStatusContains=["ENABLED", "ENABLED_BY_DEFAULT"]):
            regions += [item["RegionName"] for item in page.get("Regions", [])]
        self._lookups_for(sorted(set(regions) | {SIGNIN_REGION}))(runner)

    def _lookups_for(self, regions: list[str]) -> Callable[[TaskRunner], None]:
        def spawn_all(runner: TaskRunner) -> None:
            for region in regions:
                self._spawn(runner, _Lookup(self, region, "Username", "root"))
                if region == SIGNIN_REGION:
                    self._spawn(runner, _Lookup(self, region, "EventName", "ConsoleLogin"))
        return spawn_all

    def _alias_task(self, runner: TaskRunner) -> None:
        aliases = self.c.sessions.client(self.ev.account, "iam").list_account_aliases().get("AccountAliases", [])
        self.ev.alias = self.c._aliases[self.ev.account.id] = aliases[0] if aliases else None

    def _report_task(self, started: float) -> Callable[[TaskRunner], None]:
        def task(runner: TaskRunner) -> None:
            iam = self.c.sessions.client(self.ev.account, "iam")
            try:
                report = iam.get_credential_report()
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code in ("ReportNotPresent", "ReportExpired"):
                    return self._generate(runner, iam, started)
                if code == "ReportInProgress":
                    return self._poll(runner, started)
                raise
            generated = report.get("GeneratedTime")
            if generated and utcnow() - generated > REPORT_MAX_AGE and self._may_generate():
                return self._generate(runner, iam, started)
            rows = parse_report(report["Content"].decode("utf-8", "replace"))
            self.ev.report_row, self.ev.report_time = root_row(rows), generated
        return task

    def _may_generate(self) -> bool:
        last = self.c._generated.get(self.ev.account.id)
        return last is None or utcnow() - last >= REPORT_MAX_AGE

    def _generate(self, runner: TaskRunner, iam, started: float) -> None:
        state = iam.generate_credential_report().get("State")
        self.c._generated[self.ev.account.id] = utcnow()
        if state == "COMPLETE":
            self._report_task(started)(runner)
        else:
            self._poll(runner, started)

    def _poll(self, runner: TaskRunner, started: float) -> None:
        if self.c._clock() - started > self.c.report_deadline:
            self.ev.errors.append(AccountError(
                self.ev.account.id, "ReportTimeout",
                f"the credential report was not ready after {self.c.report_deadline:.0f}s",
                "AWS is slow to generate it; the next sweep tries again"))
            return
        self._spawn(runner, self._report_task(started), self.c.report_poll)


class _Lookup:
    """One LookupEvents page for (account, Region, attribute); re-queues itself for pacing and paging."""

    def __init__(self, job: _Job, region: str, key: str, value: str, token: str | None = None):
        self.job, self.region, self.key, self.value, self.token = job, region, key, value, token

    def __call__(self, runner: TaskRunner) -> None:
        job = self.job
        wait = job.c._pacer.delay((job.ev.account.id, self.region))
        if wait > 0:
            job._spawn(runner, self, wait)
            return
        params = {"LookupAttributes": [{"AttributeKey": self.key, "AttributeValue": self.value}],
                  "StartTime": job.window.start, "EndTime": job.window.end, "MaxResults": PAGE_SIZE}
        if self.token:
            params["NextToken"] = self.token
        client = job.c.sessions.client(job.ev.account, "cloudtrail", self.region)
        key = (job.ev.account.id, self.region)
        client.meta.events.register("before-send.cloudtrail.LookupEvents", lambda **kwargs: job.c._gate.hold(key),
                                    unique_id=f"rootcheck-gate-{key[0]}-{key[1]}")
        page = client.lookup_events(**params)
        self._absorb(page.get("Events", []))
        if page.get("NextToken"):
            job._spawn(runner, _Lookup(job, self.region, self.key, self.value, page["NextToken"]))

    def _absorb(self, events: list[dict]) -> None:
        records, skipped = [], 0
        for event in events:
            for item in unwrap({"CloudTrailEvent": event.get("CloudTrailEvent", "")}):
                if isinstance(item, Skipped):
                    skipped += 1
                else:
                    records.append(item)
        with self.job._lock:
            self.job.ev.records.extend(records)
            self.job.ev.skipped += skipped
