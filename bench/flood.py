"""Benchmark (issue 11, "One root session, one alert"): a flood of root findings into one channel.

One account alerting into one channel gets, within --minutes (10), --findings (10,000) root findings
plus the sign-in: a password-guessing burst of failed root sign-ins first (10 % of the findings, from
8 addresses), then the successful root sign-in (no MFA: critical), then the session's calls from the
console (90 %: the sign-in's source IP, `sessionCredentialFromConsole`, 5 temporary console keys in
turn as the console refreshes them, 3/4 in us-east-1 and 1/4 in eu-west-1, 70 % read-only; 2 s after the
last failure and 3 s before the first call), --high-risk (4) of them
high-risk (`CreateAccessKey`, `StopLogging` in each Region, `PutBucketPolicy`). The findings arrive
at an even rate: every --batch-every (5) seconds the events of those seconds become visible in the AWS
stand-in at once, each with its own `eventTime` (whole seconds, never after the moment it is visible).
Halfway through the calls (--ack-at) an admin acknowledges the session alert, as an on-call person
would; the calls after that only edit the counts.

Everything runs on 127.0.0.1 in this process except the bot: the AWS stand-in
(`tests/fakes/aws_standin.py`: every call answered after --latency, 100 ms; LookupEvents limited to 2/s
per account and Region and logged page by page), FakeSlack (`tests/fakes/slack_api.py`, with Slack's
own limits switched on: chat.postMessage 1/s per channel with a burst of 3, chat.update 50/min for the
workspace, i.e. Tier 3), and the real `rootcheck serve` process (HTTP mode, SQLite in a temp dir,
ROOTCHECK_SWEEP_INTERVAL --interval, 10 s; ROOTCHECK_REGIONS us-east-1,eu-west-1).

Phases (each bounded by --timeout, the bot stopped with SIGTERM at the end of each):
  poll    the flood through the sweeps (LookupEvents), to the final counts in Slack, then --quiet s
  queue   the same flood also sent to an SQS queue (moto server, EventBridge envelopes), the real-time
          path, with the poller running over the same events
  before  the previous release (--before-venv: a virtualenv with that release installed) on the same
          flood for --before-seconds, extrapolated (skipped without --before-venv)
  ingest  in this process: `Store(url).alerts.ingest` of the same findings in pages of 50, new and
          then again (a sweep re-reads its last hour), on a fresh SQLite file and on PostgreSQL
          (--postgres, default $ROOTCHECK_TEST_POSTGRES_URL; skipped without one)

Targets: top-level messages beyond the high-risk calls' own alerts <= 3; at most one edit per message
per 10 s (gaps between a message's post and its edits, leaving out the edit a person caused); the
critical sign-in posted <= 5 s after the stand-in answered the LookupEvents page holding it; the
store and grouping >= 1,000 findings/s.

    # the previous release, once: git archive a8d9869 | tar -x -C /tmp/rc-before &&
    #   python3 -m venv /tmp/rc-before/.venv && /tmp/rc-before/.venv/bin/pip install -q /tmp/rc-before
    .venv/bin/python bench/flood.py --before-venv /tmp/rc-before/.venv        # full run, writes docs
    .venv/bin/python bench/flood.py --findings 1000 --minutes 1 --phases ingest,poll --no-docs  # 2 minutes

--phases picks phases (ingest,poll,queue,before); --keep DIR keeps each run's serve.log, database, what
Slack showed (slack.json: every message with its edits) and results.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import machine, write_section  # noqa: E402
from bot.checks.cloudtrail import check_record  # noqa: E402
from tests.fakes.aws_standin import AwsStandIn  # noqa: E402
from tests.fakes.slack_api import FakeSlack  # noqa: E402
from tests.harness import Serve, serve_env  # noqa: E402
from tests.records import root_call_record, root_login_record  # noqa: E402

SECTION = "Alert flood (issue 11)"
ACCOUNT = "611100000001"
CHANNEL = "C0FLOOD01"
ADMIN = "U0ADMIN"
SIGNIN_IP = "198.51.100.23"
GUESSERS = [f"203.0.113.{n}" for n in (7, 19, 44, 81, 102, 150, 201, 240)]
OTHER_REGION = "eu-west-1"
CONSOLE_KEYS = 5
EDIT_GAP = 10.0  # the interface: at most one edit per message per 10 s
SIGNIN_TARGET = 5.0
INGEST_TARGET = 1000.0
EXTRA_TOP_LEVEL = 3  # top-level messages allowed beyond the high-risk calls' own alerts
TIER3_PER_MINUTE = 50
CALLS = {  # (event name, event source, read-only) by Region
    "us-east-1": [
        ("ListBuckets", "s3", True),
        ("DescribeInstances", "ec2", True),
        ("GetAccountSummary", "iam", True),
        ("ListUsers", "iam", True),
        ("ListRoles", "iam", True),
        ("DescribeTrails", "cloudtrail", True),
        ("GetBucketAcl", "s3", True),
        ("AttachUserPolicy", "iam", False),
        ("CreateUser", "iam", False),
        ("RunInstances", "ec2", False),
    ],
    OTHER_REGION: [
        ("DescribeInstances", "ec2", True),
        ("DescribeVpcs", "ec2", True),
        ("DescribeDBInstances", "rds", True),
        ("DescribeSecurityGroups", "ec2", True),
        ("ListFunctions20150331", "lambda", True),
        ("DescribeTrails", "cloudtrail", True),
        ("ListBuckets", "s3", True),
        ("RunInstances", "ec2", False),
        ("AuthorizeSecurityGroupIngress", "ec2", False),
        ("ModifyDBInstance", "rds", False),
    ],
}
HIGH_RISK = [
    ("CreateAccessKey", "iam", "us-east-1"),
    ("StopLogging", "cloudtrail", "us-east-1"),
    ("StopLogging", "cloudtrail", OTHER_REGION),
    ("PutBucketPolicy", "s3", OTHER_REGION),
    ("DeleteTrail", "cloudtrail", "us-east-1"),
    ("DeactivateMFADevice", "iam", "us-east-1"),
]

log = logging.getLogger("flood")


# --------------------------------------------------------------------------- the flood


@dataclass
class Event:
    at: float  # seconds after the flood starts at which it happens (its eventTime, floored)
    region: str
    kind: str  # failure | signin | call | risky
    name: str = ""  # a high-risk call's event name and source
    source: str = ""
    record: dict = field(default_factory=dict)
    finding: str = ""


@dataclass
class Flood:
    events: list[Event]
    batch_every: float
    span: float

    @property
    def failures(self) -> list[Event]:
        return [e for e in self.events if e.kind == "failure"]

    @property
    def signin(self) -> Event:
        return next(e for e in self.events if e.kind == "signin")

    @property
    def calls(self) -> list[Event]:
        return [e for e in self.events if e.kind in ("call", "risky")]

    @property
    def risky(self) -> list[Event]:
        return [e for e in self.events if e.kind == "risky"]

    def batches(self) -> list[tuple[float, list[Event]]]:
        """(seconds after the start when they become visible, events): each batch holds the events of
        the `batch_every` seconds before it."""
        out: dict[int, list[Event]] = {}
        for event in self.events:
            out.setdefault(int(event.at // self.batch_every), []).append(event)
        return [((k + 1) * self.batch_every, out[k]) for k in sorted(out)]


def plan(findings: int, minutes: float, batch_every: float, high_risk: int, seed: int = 11) -> Flood:
    """Who does what when: failures over the first 10 % of the span, the sign-in, then the calls."""
    rng = random.Random(seed)
    span = minutes * 60
    failures = findings // 10
    calls = findings - failures
    rate = (findings + 1) / span
    events = [Event(n / rate, "us-east-1", "failure") for n in range(failures)]
    signin = failures / rate + 2  # the right password, 2 s after the last wrong one (whole seconds apart)
    events.append(Event(signin, "us-east-1", "signin"))
    first_call = signin + 3
    risky_at = {int(calls * (k + 1) / (high_risk + 1)): HIGH_RISK[k % len(HIGH_RISK)] for k in range(high_risk)}
    for n in range(calls):
        at = first_call + n * (span - first_call) / calls
        if n in risky_at:
            name, source, region = risky_at[n]
            events.append(Event(at, region, "risky", name, source))
        else:
            events.append(Event(at, "us-east-1" if rng.random() < 0.75 else OTHER_REGION, "call"))
    return Flood(events, batch_every, span)


def materialise(flood: Flood, t0: float) -> None:
    """The records, now that the flood's start is known (their eventTime is t0 + at, whole seconds)."""
    rng = random.Random(7)
    per_key = len(flood.calls) // CONSOLE_KEYS + 1  # the console refreshes its credentials now and then
    call_no = 0
    for event in flood.events:
        when = datetime.fromtimestamp(int(t0 + event.at), UTC)
        if event.kind == "failure":
            event.record = root_login_record(ACCOUNT, when, success=False, source_ip=rng.choice(GUESSERS))
        elif event.kind == "signin":
            event.record = root_login_record(ACCOUNT, when, mfa_used=False, source_ip=SIGNIN_IP)
        else:
            key = f"ASIAFLOODCONSOLE{call_no // per_key:04d}"
            if event.kind == "risky":
                name, source, read_only = event.name, event.source, False
            else:
                name, source, read_only = rng.choice(CALLS[event.region])
            event.record = root_call_record(
                ACCOUNT,
                when,
                name,
                key=key,
                source_ip=SIGNIN_IP,
                console=True,
                read_only=read_only,
                region=event.region,
                event_source=f"{source}.amazonaws.com",
            )
            call_no += 1
        event.finding = check_record(event.record).id


# --------------------------------------------------------------------------- measuring the bot


def clk() -> float:
    return float(os.sysconf("SC_CLK_TCK"))


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / clk()


def proc_peak_rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def top_level(fake: FakeSlack) -> list[dict]:
    return [m for m in fake.messages(CHANNEL) if (m.get("metadata") or {}).get("event_type") == "rootcheck_finding"]


def payload(message: dict) -> dict:
    return ((message.get("metadata") or {}).get("event_payload")) or {}


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


def per_minute_peak(times: list[float]) -> int:
    """The most calls in any 60 s window."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] < t - 60:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


class Timeout(Exception):
    pass


def until(predicate, deadline: float, what: str, interval: float = 0.5):
    """Poll `predicate` until truthy; past the run's deadline, fail loudly (never hidden)."""
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Timeout(f"timed out waiting for {what}")
        time.sleep(interval)


class Run:
    """One run of the real `rootcheck serve` (this release, or the previous one) through the flood."""

    def __init__(self, args: argparse.Namespace, workdir: Path, mode: str, binary: Path | None = None):
        self.args = args
        self.mode = mode  # poll | queue | before
        self.binary = binary
        self.workdir = workdir / mode
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db = self.workdir / "rootcheck.db"
        self.flood = plan(args.findings, args.minutes, args.batch_every, args.high_risk)
        self.visible: dict[str, float] = {}  # finding id -> when its event became visible (wall clock)
        self.sent: dict[str, float] = {}  # queue mode: finding id -> just before its SendMessage
        self.released = 0
        self.progress: list[dict] = []
        self.stop_flood = threading.Event()
        self.flood_error: BaseException | None = None
        self.exit_code: int | None = None

    # the flood thread -------------------------------------------------------------------
    def _release(self, standin: AwsStandIn, t0: float, sqs=None, queue_url: str | None = None) -> None:
        try:
            for offset, events in self.flood.batches():
                while not self.stop_flood.is_set() and time.time() < t0 + offset:
                    self.stop_flood.wait(min(0.05, max(0.0, t0 + offset - time.time())))
                if self.stop_flood.is_set():
                    return
                if sqs is not None:
                    for start in range(0, len(events), 10):
                        chunk = events[start : start + 10]
                        moment = time.time()
                        for event in chunk:
                            self.sent[event.finding] = moment
                        sqs.send_message_batch(
                            QueueUrl=queue_url,
                            Entries=[
                                {"Id": str(n), "MessageBody": json.dumps(envelope(e.record))}
                                for n, e in enumerate(chunk)
                            ],
                        )
                by_region: dict[str, list[dict]] = {}
                for event in events:
                    by_region.setdefault(event.region, []).append(event.record)
                moment = time.time()
                for region, records in by_region.items():
                    standin.add_events(ACCOUNT, region, records)
                for event in events:
                    self.visible[event.finding] = moment
                self.released += len(events)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.flood_error = exc

    # the run ----------------------------------------------------------------------------
    def run(self) -> dict:
        a = self.args
        deadline = time.monotonic() + a.timeout
        moto = sqs = queue_url = None
        extra_env: dict[str, str] = {}
        if self.mode == "queue":
            moto, sqs, queue_url, moto_url = start_queue()
            extra_env = {"ROOTCHECK_QUEUE_URL": queue_url}
        try:
            with FakeSlack() as fake, AwsStandIn(latency=a.latency, record_pages=True) as standin:
                fake.add_channel(CHANNEL, members=[ADMIN])
                standin.add_account(ACCOUNT, report_state="complete", name="prod-payments")
                aws_env = standin.env() | ({"AWS_ENDPOINT_URL_SQS": moto_url} if self.mode == "queue" else {})
                env = serve_env(
                    fake,
                    aws_env,
                    f"sqlite:///{self.db}",
                    ROOTCHECK_CHANNEL=CHANNEL,
                    ROOTCHECK_ACCOUNTS=ACCOUNT,
                    ROOTCHECK_REGIONS=f"us-east-1,{OTHER_REGION}",
                    ROOTCHECK_SWEEP_INTERVAL=f"{a.interval:g}s",
                    ROOTCHECK_LOG_FORMAT="text",
                    **extra_env,
                )
                serve = Serve(env, log_path=self.workdir / "serve.log", binary=self.binary)
                try:
                    serve.start()
                    return self._measure(fake, standin, serve, deadline, sqs, queue_url)
                finally:
                    self.stop_flood.set()
                    self.exit_code = serve.stop()  # SIGTERM (killed after 30 s)
        finally:
            if moto is not None:
                moto.stop()

    def _measure(self, fake: FakeSlack, standin: AwsStandIn, serve: Serve, deadline: float, sqs, queue_url) -> dict:
        a = self.args
        pid = serve.process.pid
        until(lambda: serve.health()[1].get("last_sweep_finished_at"), deadline, "the first sweep")
        # Slack's own limits: posting 1/s per channel (short bursts), chat.update Tier 3 (~50/min)
        fake.set_rate_limit("chat.postMessage", per_second=1, burst=3, per_channel=True)
        fake.set_rate_limit("chat.update", per_minute=TIER3_PER_MINUTE)
        fake.reset_calls()
        standin.stats.reset()
        cpu0, wall0 = proc_cpu(pid), time.monotonic()
        t0 = time.time() + 1.0
        materialise(self.flood, t0)
        flood = threading.Thread(target=self._release, args=(standin, t0, sqs, queue_url), daemon=True, name="flood")
        flood.start()
        print(
            f"[{self.mode}] flood of {len(self.flood.events)} findings over {self.flood.span:.0f} s started", flush=True
        )
        if self.mode == "before":
            return self._measure_before(fake, standin, serve, deadline, t0, cpu0, wall0)

        session_id = self.flood.signin.finding
        risky_ids = {e.finding for e in self.flood.risky}
        want_session, want_failures = 1 + len(self.flood.calls), len(self.flood.failures)
        ack_after = int(len(self.flood.calls) * a.ack_at) if a.ack_at > 0 else None
        acked_at = None
        last_print = 0.0
        cpu_samples: list[tuple[float, float]] = [(time.monotonic(), cpu0)]

        def shown() -> dict:
            out = {"session": None, "failures": [], "risky": 0, "summary": None}
            for m in top_level(fake):
                p = payload(m)
                if p.get("finding_id") == session_id:
                    out["session"] = m
                elif p.get("finding_id") in risky_ids:
                    out["risky"] += 1
                elif p.get("kind") == "root_console_login_failed":
                    out["failures"].append(m)
            if out["session"] is not None:
                out["summary"] = next(
                    (
                        r
                        for r in fake.replies(CHANNEL, out["session"]["ts"])
                        if (r.get("metadata") or {}).get("event_type") == "rootcheck_summary"
                    ),
                    None,
                )
            return out

        while True:
            if self.flood_error is not None:
                raise RuntimeError(f"the flood thread failed: {self.flood_error!r}")
            if time.monotonic() > deadline:
                raise Timeout(f"[{self.mode}] the final counts were not shown in time")
            state = shown()
            now = time.monotonic()
            cpu_samples.append((now, proc_cpu(pid)))
            calls_visible = sum(1 for e in self.flood.calls if e.finding in self.visible)
            if (
                ack_after is not None
                and acked_at is None
                and state["session"] is not None
                and calls_visible >= ack_after
            ):
                status, _, _ = serve.click(session_id, state["session"]["ts"], user=ADMIN, channel=CHANNEL)
                acked_at = time.time()
                print(f"[{self.mode}] {ADMIN} acknowledged the session alert (HTTP {status})", flush=True)
            session_count = payload(state["session"]).get("count", 0) if state["session"] else 0
            failure_count = sum(payload(m).get("count", 0) for m in state["failures"])
            summary_count = payload(state["summary"]).get("count", 0) if state["summary"] else 0
            self.progress.append(
                {
                    "t": time.time() - t0,
                    "visible": len(self.visible),
                    "session": session_count,
                    "failures": failure_count,
                }
            )
            if now - last_print >= 30:
                last_print = now
                print(
                    f"[{self.mode}] t={time.time() - t0:5.0f}s visible {len(self.visible)}/"
                    f"{len(self.flood.events)}  shown: session {session_count}, failures {failure_count}, "
                    f"high-risk alerts {state['risky']}, top-level {len(top_level(fake))}, "
                    f"bot CPU {proc_cpu(pid) - cpu0:.0f} s",
                    flush=True,
                )
            done = (
                len(self.visible) == len(self.flood.events)
                and session_count == want_session
                and failure_count == want_failures
                and state["risky"] == len(risky_ids)
                and summary_count == want_session
            )
            if done:
                break
            time.sleep(1.0)
        final_at = time.time()
        cpu_final, wall_final = proc_cpu(pid), time.monotonic()
        print(
            f"[{self.mode}] final counts shown {final_at - t0 - self.flood.span:.0f} s after the last batch; "
            f"quiet for {a.quiet:g} s",
            flush=True,
        )
        calls_before_quiet = len(fake.call_log())
        time.sleep(a.quiet)
        cpu_quiet = proc_cpu(pid)
        after_quiet = fake.call_log()[calls_before_quiet:]
        result = self._collect(fake, standin, t0, final_at, acked_at)
        self._dump(fake, t0)
        result.update(
            cpu=cpu_final - cpu0,
            wall=wall_final - wall0,
            quiet_calls=Counter(c["method"] for c in after_quiet),
            quiet_cpu=cpu_quiet - cpu_final,
            peak_rss=proc_peak_rss(pid),
            cpu_peak=max((b[1] - a_[1]) / (b[0] - a_[0]) for a_, b in zip(cpu_samples, cpu_samples[10:]))
            if len(cpu_samples) > 10
            else None,
        )
        return result

    def _collect(
        self, fake: FakeSlack, standin: AwsStandIn, t0: float, final_at: float, acked_at: float | None
    ) -> dict:
        flood = self.flood
        messages = top_level(fake)
        everything = fake.all_messages(CHANNEL)
        by_id = {payload(m).get("finding_id"): m for m in messages}
        session = by_id[flood.signin.finding]
        risky_ids = {e.finding for e in flood.risky}
        failure_alerts = [m for m in messages if payload(m).get("kind") == "root_console_login_failed"]
        failures = max(failure_alerts, key=lambda m: payload(m).get("count", 0))
        others = [
            m
            for m in messages
            if m is not session and m not in failure_alerts and payload(m).get("finding_id") not in risky_ids
        ]
        thread = fake.replies(CHANNEL, session["ts"])
        summary = next(r for r in thread if (r.get("metadata") or {}).get("event_type") == "rootcheck_summary")
        risky = [by_id[e.finding] for e in flood.risky]

        # edits: per message, the post and every edit but the one a person caused (the ack)
        edit_rows = []
        named = [
            ("session alert", session),
            *[("failure alert", m) for m in failure_alerts],
            ("thread summary", summary),
            *[(f"high-risk alert: {e.name} ({e.region})", by_id[e.finding]) for e in flood.risky],
            *[(f"other: {m.get('text', '')[:60]}", m) for m in others],
        ]
        for name, message in named:
            edits = fake.edits(CHANNEL, message["ts"])
            person = [e["time"] for e in edits if "Acknowledged by" in json.dumps(e.get("blocks"))][:1]
            paced = [float(message["ts"])] + [e["time"] for e in edits if e["time"] not in person]
            g = gaps(paced)
            after_person = [e["time"] - person[0] for e in edits if person and e["time"] > person[0]][:1]
            edit_rows.append(
                {
                    "message": name,
                    "edits": len(edits),
                    "person": len(person),
                    "min_gap": min(g) if g else None,
                    "mean_gap": statistics.fmean(g) if g else None,
                    "after_person": after_person[0] if after_person else None,
                }
            )

        log_ = fake.call_log()
        by_method = Counter(c["method"] for c in log_)
        limited = Counter(c["method"] for c in log_ if c["status"] == 429)
        updates = [c["time"] for c in log_ if c["method"] == "chat.update" and c["status"] == 200]

        signin = flood.signin
        page_at = standin.stats.page_served(signin.record["eventID"])
        signin_posted = float(session["ts"])
        since = self.sent or self.visible  # queue mode: from SendMessage
        high_risk_lag = [float(by_id[e.finding]["ts"]) - since[e.finding] for e in flood.risky]
        acked = [e["time"] for e in fake.edits(CHANNEL, session["ts"]) if "Acknowledged by" in json.dumps(e["blocks"])]
        pages = standin.stats.pages
        lookups = standin.stats.count("cloudtrail", "LookupEvents")
        throttled = standin.stats.throttled_total
        sweeps = self._sweeps(t0, final_at)
        session_text = json.dumps(session.get("blocks"))
        lag = [p["visible"] - p["session"] - p["failures"] for p in self.progress]
        return {
            "findings": len(flood.events),
            "calls": len(flood.calls),
            "failures": len(flood.failures),
            "high_risk": len(flood.risky),
            "top_level": len(messages),
            "thread_replies": len(everything) - len(messages),
            "duplicates": len(messages) - len({payload(m).get("finding_id") for m in messages}),
            "beyond_high_risk": len(messages) - len(risky),
            "session_count": payload(session).get("count"),
            "session_severity": payload(session).get("severity"),
            "failure_count": payload(failures).get("count"),
            "failure_severity": payload(failures).get("severity"),
            "failure_alerts": len(failure_alerts),
            "others": [m.get("text") for m in others],
            "failure_text": failures.get("text"),
            "session_title": session.get("text"),
            "after_failures": f"After {len(flood.failures)} failed sign-in(s)" in session_text,
            "acked": "Acknowledged by" in session_text,
            "acked_at": acked_at,
            "ack_shown_after": acked[0] - acked_at if acked and acked_at else None,
            "summary_count": payload(summary).get("count"),
            "summary_edits": len(fake.edits(CHANNEL, summary["ts"])),
            "thread": Counter((r.get("metadata") or {}).get("event_type") or "text" for r in thread),
            "edit_rows": edit_rows,
            "by_method": by_method,
            "limited": limited,
            "updates_peak_minute": per_minute_peak(updates),
            "updates_mean_minute": len(updates) / max((max(updates) - min(updates)) / 60, 1) if updates else 0,
            "signin_page_at": page_at,
            "signin_posted": signin_posted,
            "signin_after_page": signin_posted - page_at if page_at else None,
            "signin_after_visible": signin_posted - self.visible[signin.finding],
            "signin_sent_to_post": signin_posted - self.sent[signin.finding] if self.sent else None,
            "high_risk_lag": high_risk_lag,
            "final_after_last_batch": final_at - (t0 + flood.span),
            "flood_to_final": final_at - t0,
            "max_unshown": max(lag) if lag else None,
            "lookups": lookups,
            "pages": len(pages),
            "throttled": throttled,
            "sweeps": sweeps,
            "queue_latency": self._queue_latency(fake) if self.sent else None,
        }

    def _dump(self, fake: FakeSlack, t0: float) -> None:
        """What Slack shows, with every message's edits (seconds after the flood began), for --keep."""
        out = []
        for m in fake.all_messages(CHANNEL):
            out.append(
                {
                    "ts": m["ts"],
                    "at": float(m["ts"]) - t0,
                    "thread_ts": m.get("thread_ts"),
                    "text": m["text"],
                    "metadata": m.get("metadata"),
                    "blocks": m.get("blocks"),
                    "edits": [
                        {"at": e["time"] - t0, "count": payload(e).get("count"), "text": e.get("text")}
                        for e in fake.edits(CHANNEL, m["ts"])
                    ],
                }
            )
        calls = [
            {"at": c["time"] - t0, "method": c["method"], "status": c["status"], "error": c["error"]}
            for c in fake.call_log()
        ]
        (self.workdir / "slack.json").write_text(
            json.dumps({"messages": out, "calls": calls, "progress": self.progress}, indent=1)
        )

    def _queue_latency(self, fake: FakeSlack) -> dict:
        """Queue mode: SendMessage -> post, for the alerts a single event opens (sign-in, high-risk)."""
        by_id = {payload(m).get("finding_id"): float(m["ts"]) for m in top_level(fake)}
        ids = [self.flood.signin.finding, *[e.finding for e in self.flood.risky]]
        return {i: by_id[i] - self.sent[i] for i in ids if i in by_id}

    def _sweeps(self, since: float, until_: float) -> dict:
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute("SELECT started_at, finished_at FROM sweeps WHERE finished_at IS NOT NULL").fetchall()
        durations = []
        for started, finished in rows:
            s = datetime.fromisoformat(started).replace(tzinfo=UTC).timestamp()
            f = datetime.fromisoformat(finished).replace(tzinfo=UTC).timestamp()
            if since <= s <= until_:
                durations.append(f - s)
        return {
            "n": len(durations),
            "max": max(durations, default=0.0),
            "mean": statistics.fmean(durations) if durations else 0.0,
        }

    # the previous release ---------------------------------------------------------------
    def _measure_before(
        self, fake: FakeSlack, standin: AwsStandIn, serve: Serve, deadline: float, t0: float, cpu0: float, wall0: float
    ) -> dict:
        a = self.args
        end = t0 + a.before_seconds
        while time.time() < end:
            if time.monotonic() > deadline:
                raise Timeout("[before] the run did not end in time")
            time.sleep(1.0)
        self.stop_flood.set()
        cpu, wall = proc_cpu(serve.process.pid) - cpu0, time.monotonic() - wall0
        log_ = fake.call_log()
        posts = [c["time"] for c in log_ if c["method"] == "chat.postMessage" and c["status"] == 200]
        messages = fake.messages(CHANNEL)
        with sqlite3.connect(self.db) as conn:
            states = dict(conn.execute("SELECT state, count(*) FROM findings GROUP BY state").fetchall())
            signin = conn.execute(
                "SELECT state, created_at FROM findings WHERE id = ?", (self.flood.signin.finding,)
            ).fetchone()
            ahead = None
            if signin and signin[0] != "posted":
                ahead = conn.execute(
                    "SELECT count(*) FROM findings WHERE state = 'pending' AND target = ? AND "
                    "(created_at < ? OR (created_at = ? AND id < ?))",
                    (CHANNEL, signin[1], signin[1], self.flood.signin.finding),
                ).fetchone()[0]
        window = (max(posts) - min(posts)) if len(posts) > 1 else 0.0
        return {
            "seconds": a.before_seconds,
            "visible": len(self.visible),
            "stored": sum(states.values()),
            "states": states,
            "posted": len(posts),
            "messages": len(messages),
            "by_method": Counter(c["method"] for c in log_),
            "limited": Counter(c["method"] for c in log_ if c["status"] == 429),
            "post_rate": (len(posts) - 1) / window if window else 0.0,
            "signin_state": signin[0] if signin else "not stored",
            "signin_ahead": ahead,
            "signin_posted_after": (
                float(next(m["ts"] for m in messages if payload(m).get("finding_id") == self.flood.signin.finding))
                - self.visible[self.flood.signin.finding]
            )
            if signin and signin[0] == "posted"
            else None,
            "cpu": cpu,
            "wall": wall,
            "edits": sum(len(fake.edits(CHANNEL, m["ts"])) for m in messages),
        }


# --------------------------------------------------------------------------- the real-time path


def envelope(record: dict) -> dict:
    signin = record["eventName"] == "ConsoleLogin"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS Console Sign In via CloudTrail" if signin else "AWS API Call via CloudTrail",
        "source": "aws.signin" if signin else "aws." + record["eventSource"].split(".")[0],
        "account": record["recipientAccountId"],
        "time": record["eventTime"],
        "region": record["awsRegion"],
        "resources": [],
        "detail": record,
    }


def start_queue():
    import boto3  # noqa: PLC0415 - only this phase needs moto and boto3
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    url = f"http://{host}:{port}"
    sqs = boto3.client(
        "sqs", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    queue = sqs.create_queue(QueueName="rootcheck-flood")["QueueUrl"]
    return moto, sqs, queue, url


# --------------------------------------------------------------------------- the store alone


def ingest_phase(url: str, findings: int) -> dict:
    """`alerts.ingest` of the flood's findings in pages of 50, in event-time order, then all again."""
    from bot.store import Placement, Store  # noqa: PLC0415

    flood = plan(findings, 10, 5, 4)
    materialise(flood, time.time() - 3600)
    found = [check_record(e.record) for e in flood.events]
    placement = Placement(target=lambda account: CHANNEL, remind_after=timedelta(minutes=30))
    store = Store(url)
    try:
        now = datetime.now(UTC)
        pages = [found[i : i + 50] for i in range(0, len(found), 50)]
        started = time.perf_counter()
        for page in pages:
            store.alerts.ingest(page, now, placement)
        new = time.perf_counter() - started
        started = time.perf_counter()
        for page in pages:
            store.alerts.ingest(page, now, placement)
        again = time.perf_counter() - started
        session = store.alerts.get(flood.signin.finding)
        return {
            "findings": len(found),
            "new": len(found) / new,
            "again": len(found) / again,
            "new_s": new,
            "count": session.alert.summary.count,
            "alerts": sum(store.alerts.counts().values()),
        }
    finally:
        store.close()


def ingest_postgres(server_url: str, findings: int) -> dict:
    from tests.store.conftest import create_database, drop_database  # noqa: PLC0415

    url = create_database(server_url)
    try:
        return ingest_phase(url, findings)
    finally:
        drop_database(url)


# --------------------------------------------------------------------------- the report


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def per_k(n: float, findings: int) -> str:
    return f"{1000 * n / findings:.1f}"


def render(
    args: argparse.Namespace,
    command: str,
    poll: dict,
    queue: dict | None,
    before: dict | None,
    ingest: dict,
    wall: float,
) -> tuple[str, bool]:
    n = poll["findings"]
    rows_ok = all(r["min_gap"] is None or r["min_gap"] >= EDIT_GAP for r in poll["edit_rows"])
    top_ok = poll["beyond_high_risk"] <= EXTRA_TOP_LEVEL and poll["duplicates"] == 0
    signin_ok = poll["signin_after_page"] is not None and poll["signin_after_page"] <= SIGNIN_TARGET
    ingest_ok = all(v["new"] >= INGEST_TARGET for v in ingest.values() if v)
    ok = rows_ok and top_ok and signin_ok and ingest_ok and poll["exit_code"] == 0
    edits_total = sum(r["edits"] for r in poll["edit_rows"])
    worst = min((r["min_gap"] for r in poll["edit_rows"] if r["min_gap"] is not None), default=None)
    queue_exit = "" if queue is None else f", queue run exit {queue['exit_code']}"
    other_alerts = "".join(f", {text!r}" for text in poll["others"])
    ack_next = seconds(next((r["after_person"] for r in poll["edit_rows"] if r["after_person"] is not None), None))
    lines = [
        f"Command: `{command}`",
        "",
        machine(),
        "",
        f"One account, one channel: {poll['failures']:,} failed root sign-ins from {len(GUESSERS)} addresses (the first "
        f"{args.minutes * 6:.0f} s), the root sign-in without MFA, then {poll['calls']:,} calls of that console session "
        f"(same source IP, `sessionCredentialFromConsole`, 5 console keys in turn, us-east-1 and {OTHER_REGION}), "
        f"{poll['high_risk']} of them high-risk; {n:,} findings in {args.minutes:g} minutes, visible in the AWS "
        f"stand-in in batches every {args.batch_every:g} s. The real `rootcheck serve` (HTTP mode, SQLite, "
        f"`ROOTCHECK_SWEEP_INTERVAL={args.interval:g}s`) against the stand-in ({args.latency * 1000:.0f} ms per call, "
        f"LookupEvents 2/s per account and Region) and FakeSlack with Slack's limits on (chat.postMessage 1/s per "
        f"channel, chat.update {TIER3_PER_MINUTE}/min). An admin acknowledged the session alert after "
        f"{args.ack_at:.0%} of the calls were visible.",
        "",
        "| target | figure | verdict |",
        "|---|---|---|",
        f"| top-level messages beyond the high-risk calls' own alerts <= {EXTRA_TOP_LEVEL} | "
        f"{poll['top_level']} top-level = {poll['high_risk']} high-risk alerts + {poll['beyond_high_risk']} "
        f"({poll['failure_alerts']} failure alert, the session alert{other_alerts}); {poll['duplicates']} posted "
        f"twice | {verdict(top_ok)} |",
        f"| at most 1 edit per message per 10 s (the ack's edit left out) | smallest gap between a message's post "
        f"and edits: {worst:.1f} s over {edits_total} edits of {len(poll['edit_rows'])} messages | "
        f"{verdict(rows_ok)} |"
        if worst is not None
        else "| edits | none | - |",
        f"| critical sign-in posted <= {SIGNIN_TARGET:g} s after the page holding it is read | "
        f"{poll['signin_after_page']:.2f} s (page answered by the stand-in -> message ts) | {verdict(signin_ok)} |",
        *[
            f"| store and grouping >= {INGEST_TARGET:,.0f} findings/s ({name}) | {v['new']:,.0f} new findings/s, "
            f"{v['again']:,.0f}/s re-read | {verdict(v['new'] >= INGEST_TARGET)} |"
            for name, v in ingest.items()
            if v
        ],
        *[
            f"| store and grouping ({name}) | not measured: no PostgreSQL URL | - |"
            for name, v in ingest.items()
            if not v
        ],
        f"| `rootcheck serve` stops on SIGTERM with exit 0 | exit {poll['exit_code']}{queue_exit} | "
        f"{verdict(poll['exit_code'] == 0 and (queue is None or queue['exit_code'] == 0))} |",
        "",
        "What the channel shows at the end:",
        "",
        f"- session alert: {poll['session_title']!s}, count **{poll['session_count']:,}** (sign-in + "
        f'{poll["calls"]:,} calls), severity `{poll["session_severity"]}`, "After {poll["failures"]:,} failed '
        f'sign-in(s)" {"shown" if poll["after_failures"] else "MISSING"}, '
        f"{'acknowledged (the later calls edited the counts only)' if poll['acked'] else 'not acknowledged'};",
        f"- failure alert: count **{poll['failure_count']:,}**, severity `{poll['failure_severity']}` "
        f"({poll['failure_text']});",
        f"- {poll['high_risk']} high-risk alerts, one per call, `critical`, posted {min(poll['high_risk_lag']):.0f} to "
        f"{max(poll['high_risk_lag']):.0f} s after their event became visible;",
        *(
            [
                f"- the admin's Acknowledge showed in the session alert {poll['ack_shown_after']:.2f} s after the click "
                f"(not paced: a person's action); the next paced edit came {ack_next} after it;"
            ]
            if poll["ack_shown_after"] is not None
            else []
        ),
        f"- the session's thread: {poll['thread'].get('rootcheck_summary', 0)} activity summary "
        f"(count {poll['summary_count']:,}, edited {poll['summary_edits']} times) and "
        f"{sum(v for k, v in poll['thread'].items() if k != 'rootcheck_summary')} other reply (the ack's audit line).",
        "",
        "| message | edits | by a person | smallest gap | mean gap |",
        "|---|---|---|---|---|",
        *[
            f"| {r['message']} | {r['edits']} | {r['person']} | {seconds(r['min_gap'])} | {seconds(r['mean_gap'])} |"
            for r in poll["edit_rows"]
        ],
        "",
    ]
    lines += before_after(poll, queue, before, n)
    lines += [
        "",
        f"chat.update: peak {poll['updates_peak_minute']} in any minute, mean {poll['updates_mean_minute']:.1f}/min, "
        f"against Tier 3's ~{TIER3_PER_MINUTE}/min; Slack answered 429 to "
        f"{sum(poll['limited'].values())} call(s). After the final counts were shown, {args.quiet:g} s of quiet: "
        f"{sum(poll['quiet_calls'].values())} Slack call(s).",
        "",
        f"Time: the final counts were in Slack {poll['final_after_last_batch']:.0f} s after the last batch became "
        f"visible ({poll['flood_to_final']:.0f} s after the flood began); the sign-in was posted "
        f"{poll['signin_after_visible']:.1f} s after it became visible. {poll['sweeps']['n']} sweeps in that time, "
        f"the longest {poll['sweeps']['max']:.0f} s (mean {poll['sweeps']['mean']:.0f} s); {poll['pages']:,} "
        f"LookupEvents pages ({poll['throttled']} throttled). Bot CPU {poll['cpu']:.0f} s over {poll['wall']:.0f} s "
        f"({poll['cpu'] / poll['wall']:.0%} of a core; busiest 10 s: "
        f"{(poll['cpu_peak'] or 0):.0%}), peak RSS {poll['peak_rss']:.0f} MiB; the whole benchmark took "
        f"{wall / 60:.0f} min.",
    ]
    if queue is not None:
        q = queue["queue_latency"] or {}
        risky = [v for k, v in q.items() if k != queue["signin_id"]]
        gap = min(r["min_gap"] for r in queue["edit_rows"] if r["min_gap"] is not None)
        lines += [
            "",
            f"**Real-time path** (the same flood also sent to an SQS queue as EventBridge events, as it "
            f"happens, with the poller running over the same events): {queue['top_level']} top-level messages "
            f"({queue['beyond_high_risk']} beyond the high-risk alerts: "
            f"{verdict(queue['beyond_high_risk'] <= EXTRA_TOP_LEVEL)}), session count "
            f"{queue['session_count']:,}, failures {queue['failure_count']:,}, {queue['duplicates']} posted twice; smallest "
            f"gap between a message's post and edits {gap:.1f} s ({verdict(gap >= EDIT_GAP)}); "
            f"SendMessage -> post: the sign-in {q.get(queue['signin_id'], float('nan')):.2f} s, the high-risk "
            f"calls {min(risky):.2f} to {max(risky):.2f} s; final counts {queue['final_after_last_batch']:.0f} s "
            f"after the last batch; chat.update peak {queue['updates_peak_minute']} in any minute.",
        ]
    lines += ["", *why(poll, args)]
    return "\n".join(lines), ok


def before_after(poll: dict, queue: dict | None, before: dict | None, n: int) -> list[str]:
    """Per 1,000 findings and the times that matter, before (the previous release) and after."""
    runs = [("after (poll)", poll)] + ([("after (queue)", queue)] if queue else [])
    methods = sorted(set().union(*(r["by_method"] for _, r in runs), before["by_method"] if before else ()))
    head = "| per 1,000 findings | before (a8d9869) | " + " | ".join(name for name, _ in runs) + " |"
    out = [
        "Per 1,000 findings, before (the previous release, a8d9869: one message per finding, 1 message/s per "
        "channel) and after (this release):",
        "",
        head,
        "|---" * (2 + len(runs)) + "|",
    ]

    def after(fn) -> str:
        return " | ".join(fn(r) for _, r in runs)

    def edits(r: dict) -> int:
        return sum(row["edits"] for row in r["edit_rows"])

    if before:
        per_finding = sum(v for k, v in before["states"].items() if k in ("pending", "posting", "posted")) / max(
            before["stored"], 1
        )  # every stored finding is a message of its own, posted or queued
        per_post = {m: before["by_method"].get(m, 0) / max(before["posted"], 1) for m in methods}
        b_messages = 1000 * per_finding
        out += [
            f"| messages (top-level and replies) | {b_messages:,.0f} | "
            f"{after(lambda r: per_k(r['top_level'] + r['thread_replies'], n))} |",
            f"| edits (`chat.update`) | {b_messages * per_post.get('chat.update', 0):,.1f} | "
            f"{after(lambda r: per_k(edits(r), n))} |",
        ]
        out += [
            f"| `{m}` calls | {b_messages * per_post[m]:,.1f} | {after(lambda r: per_k(r['by_method'].get(m, 0), n))} |"
            for m in methods
        ]
        drain = n / before["post_rate"] if before["post_rate"] else float("inf")
        signin_before = (
            f"{before['signin_posted_after']:.0f} s after it became visible"
            if before["signin_posted_after"] is not None
            else f"not in {before['seconds']:.0f} s: queued behind {before['signin_ahead']:,} older findings "
            f"(~{(before['signin_ahead'] or 0) / max(before['post_rate'], 1e-9) / 60:.0f} min more)"
        )
        out += [
            "",
            f"| time and cost | before (a8d9869) | {' | '.join(name for name, _ in runs)} |",
            "|---" * (2 + len(runs)) + "|",
            f"| critical sign-in in Slack | {signin_before} | {poll['signin_after_visible']:.1f} s after it became "
            f"visible ({poll['signin_after_page']:.1f} s after its page)"
            + (f" | {queue['signin_sent_to_post']:.2f} s after SendMessage" if queue else "")
            + " |",
            f"| the whole flood shown in Slack | {n:,} messages at {before['post_rate']:.2f}/s: "
            f"{drain / 3600:.1f} h | "
            + after(lambda r: f"final counts {r['final_after_last_batch']:.0f} s after the last batch")
            + " |",
            f"| bot CPU | {before['cpu']:.0f} s in its {before['wall']:.0f} s | "
            + after(lambda r: f"{r['cpu']:.0f} s in {r['wall']:.0f} s")
            + " |",
            f"| SIGTERM at the end | exit {before['exit_code']} | " + after(lambda r: f"exit {r['exit_code']}") + " |",
            "",
            f'"Before" is measured and extrapolated: the previous release (`git archive a8d9869`, installed '
            f"in a virtualenv of its own) ran the same flood for {before['seconds']:.0f} s against the same "
            f"fakes. {before['visible']:,} findings had become visible; it had stored {before['stored']:,} "
            f"(outbox states {before['states']}), one message each, and posted {before['posted']} of them "
            f"with {before['by_method'].get('chat.postMessage', 0)} `chat.postMessage` calls at "
            f"{before['post_rate']:.2f}/s and no edit; the per-1,000 figures scale that to every finding. "
            + (
                'SIGTERM did not end it: it never logged "stopped" and was killed after 30 s (that release '
                "predates the scheduler shutdown fix of 6c33f28)."
                if before["exit_code"] != 0
                else ""
            ),
        ]
    else:
        out += [
            f"| messages | 1,000 (derived) | {after(lambda r: per_k(r['top_level'] + r['thread_replies'], n))} |",
            f"| edits (`chat.update`) | 0 (derived) | {after(lambda r: per_k(edits(r), n))} |",
        ]
        out += [
            f"| `{m}` calls | {'1,000 (derived)' if m == 'chat.postMessage' else '0 (derived)'} | "
            f"{after(lambda r: per_k(r['by_method'].get(m, 0), n))} |"
            for m in methods
        ]
        out += [
            "",
            '"Before" is derived from the previous release\'s code (a8d9869: its `Outbox` posts each finding as '
            "its own message, paced at 1 message/s per channel), not measured: run with --before-venv.",
        ]
    return out


def why(poll: dict, args: argparse.Namespace) -> list[str]:
    edits = sum(r["edits"] for r in poll["edit_rows"])
    return [
        "**Why it holds.** Grouping is in the store: each LookupEvents page (50 records) is one `ingest` "
        "transaction that adds its findings to the alerts they belong to, so a page changes one session or one "
        "failure alert, not 50 messages. Slack sees the state, not the findings: an alert is posted once and edited "
        "when its `version` moved, at most every 10 s after its last post or edit, the latest state winning "
        f"({poll['findings']:,} findings cost {edits} edits), and the sign-in goes first because a channel's waiting "
        "alerts go out most severe first. A page is handed over as soon as it is read and delivery runs every 2 s, so "
        "the sign-in is posted about a delivery tick after its page.",
        "",
        f"**What stops it.** Not Slack (at most {poll['updates_peak_minute']} chat.update a minute of Tier 3's "
        f"~{TIER3_PER_MINUTE}) and not the store: the reading. Every sweep re-reads the "
        "account's last hour (the 60-minute overlap that catches CloudTrail's late deliveries) at 1 LookupEvents page "
        "of 50 per second per Region, so with thousands of root events in the hour a sweep of this one account takes "
        f"minutes (longest here {poll['sweeps']['max']:.0f} s), and a new batch waits for the sweep in progress to "
        f"end: Slack's counts trailed the findings visible by up to {poll['max_unshown']:,}, high-risk calls were "
        f"posted up to {max(poll['high_risk_lag']):.0f} s after they became visible, and the final counts came "
        f"{poll['final_after_last_batch']:.0f} s after the last batch. The real-time path has no such wait.",
        "",
        "**What this benchmark changed** (branch `flood`): a burst of failed sign-ins read in one sweep split into "
        "one alert per LookupEvents page (pages come newest first and each is placed as read; the window opened by "
        "the first page now moves back to the older failures of the same read); an Acknowledge edited the thread "
        "summary at once, 3 s after its post (now the summary keeps its 10-second turn); a page of calls read every "
        "failed sign-in of the hour (ingest went from 2,305 to about 4,700 findings/s on SQLite, 917 to about "
        '1,500 on PostgreSQL); and SIGTERM during a sweep longer than 8 s left the process hanging after "stopped" '
        "(it now exits 0).",
    ]


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--findings", type=int, default=10000, help="failed sign-ins (10 %%) and calls (default 10000)")
    ap.add_argument("--minutes", type=float, default=10.0, help="span of the flood (default 10)")
    ap.add_argument("--batch-every", type=float, default=5.0, help="seconds between batches (default 5)")
    ap.add_argument("--high-risk", type=int, default=4, help="high-risk calls among the calls (default 4)")
    ap.add_argument(
        "--ack-at",
        type=float,
        default=0.5,
        help="share of the calls visible when the admin acknowledges the session alert (0: never; default 0.5)",
    )
    ap.add_argument("--interval", type=float, default=10.0, help="ROOTCHECK_SWEEP_INTERVAL seconds (default 10)")
    ap.add_argument("--latency", type=float, default=0.1, help="seconds per AWS call at the stand-in (default 0.1)")
    ap.add_argument("--quiet", type=float, default=30.0, help="seconds watched after the final counts (default 30)")
    ap.add_argument(
        "--phases",
        default="ingest,poll,queue,before",
        help="which phases run (default ingest,poll,queue,before; before needs --before-venv)",
    )
    ap.add_argument("--before-venv", type=Path, help="virtualenv of the previous release, for the 'before' run")
    ap.add_argument("--before-seconds", type=float, default=180.0, help="length of the 'before' run (default 180)")
    ap.add_argument(
        "--postgres",
        default=os.environ.get("ROOTCHECK_TEST_POSTGRES_URL"),
        help="PostgreSQL server URL for the ingest phase (default $ROOTCHECK_TEST_POSTGRES_URL)",
    )
    ap.add_argument("--timeout", type=float, help="seconds each run may take (default: the span + 15 minutes)")
    ap.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument("--keep", type=Path, help="keep the bot's logs, databases and what Slack showed in this folder")
    args = ap.parse_args(argv)
    if args.high_risk > len(HIGH_RISK):
        ap.error(f"at most {len(HIGH_RISK)} high-risk calls")
    args.timeout = args.timeout or args.minutes * 60 + 900
    phases = set(args.phases.split(","))
    if phases - {"ingest", "poll", "queue", "before"}:
        ap.error(f"unknown phase(s): {', '.join(sorted(phases - {'ingest', 'poll', 'queue', 'before'}))}")
    given = list(argv if argv is not None else sys.argv[1:])
    if "--keep" in given:  # where the artifacts go changes no figure
        del given[given.index("--keep") : given.index("--keep") + 2]
    shown_args = [a for a in given if not a.startswith("--keep=")]
    command = " ".join([".venv/bin/python", "bench/flood.py", *shown_args])

    def terminated(signum, frame):  # noqa: ARG001 - SIGTERM: unwind, so the bot and the fakes are stopped
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, terminated)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rootcheck-flood-") as workdir:
        work = args.keep or Path(workdir)
        work.mkdir(parents=True, exist_ok=True)
        ingest: dict = {}
        if "ingest" in phases:
            ingest = {
                "SQLite": ingest_phase(f"sqlite:///{work / 'ingest.db'}", args.findings),
                "PostgreSQL": ingest_postgres(args.postgres, args.findings) if args.postgres else None,
            }
            print(f"[ingest] {json.dumps(ingest)}", flush=True)
        runs = {}
        for mode in [m for m in ("poll", "queue") if m in phases]:
            run = Run(args, work, mode)
            try:
                runs[mode] = run.run()
            finally:
                print(f"[{mode}] rootcheck serve exited with {getattr(run, 'exit_code', None)}", flush=True)
            runs[mode]["exit_code"] = run.exit_code
            runs[mode]["signin_id"] = run.flood.signin.finding
        before = None
        if args.before_venv and "before" in phases:
            run = Run(args, work, "before", binary=args.before_venv / "bin" / "rootcheck")
            try:
                before = run.run()
            finally:
                print(f"[before] rootcheck serve exited with {getattr(run, 'exit_code', None)}", flush=True)
            before["exit_code"] = run.exit_code
    if args.keep:
        (work / "results.json").write_text(
            json.dumps({"ingest": ingest, "runs": runs, "before": before}, default=str, indent=1)
        )
    if not {"ingest", "poll"} <= phases:
        print(json.dumps({"ingest": ingest, "runs": runs, "before": before}, default=str, indent=1))
        return 0
    body, ok = render(args, command, runs["poll"], runs.get("queue"), before, ingest, time.monotonic() - started)
    print(body)
    if not args.no_docs:
        write_section(SECTION, body)
        print("\nwrote docs/benchmarks.md")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
