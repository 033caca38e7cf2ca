"""Fault-injection soak (issue 12): two `rootcheck serve` replicas on one PostgreSQL database, for
minutes, under random faults; then the delivery invariants, read from FakeSlack and the database.

    .venv/bin/python bench/soak.py [--minutes 10] [--seed 12] [--short] [--no-write] [--keep DIR]

Needs ROOTCHECK_TEST_POSTGRES_URL (a PostgreSQL server: a fresh database is created on it and dropped
afterwards) and, for the PostgreSQL-restart fault, ROOTCHECK_TEST_POSTGRES_CTL: a command that takes
pg_ctl's action and options for that server's cluster (`$CTL restart -m fast`; `.ci/run` sets both).
Without it that fault is skipped and the report says so. `--short` is the CI form (75 s of faults),
which `tests/serve/test_soak.py` runs.

What runs (all on 127.0.0.1): the AWS stand-in (CloudTrail, IAM, STS), FakeSlack with Slack's rate limits
on, a moto server (SQS, the real-time path), and two real `rootcheck serve` processes sharing the
database, the queue and the Slack workspace. Four threads:

- a driver adds root events: sign-ins with their console calls, failed sign-ins, root access key calls,
  high-risk calls; some late (event time 10 to 45 minutes back, inside the 60-minute overlap of the
  lookups), some twice (the same record again in CloudTrail, and on the queue as well as in CloudTrail),
  some only on the queue. Each record's finding id goes into a ledger;
- a clicker acknowledges about a third of the posted alerts (signed clicks, either replica), clicking
  again, as a person would, while the ack is not stored;
- a fault injector, from a schedule drawn from the seed (every kind once, then at random): kill -9 or
  SIGTERM of either replica (started again after), Slack 429/5xx bursts, PostgreSQL restarted
  (`pg_ctl restart -m fast`), LookupEvents throttling storms, AccessDenied on random calls. After a
  replica or PostgreSQL fault it waits for /healthz 200 on both replicas before the next such fault;
- then everything is switched off and the soak waits until nothing is pending (a stall of 6 minutes,
  longer than the 5-minute reconcile of an abandoned claim on PostgreSQL, counts as a hang) and checks
  the invariants (`INVARIANTS`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import shlex
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import yaml  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402

from bench.report import DOC, machine, write_section  # noqa: E402
from bot.checks.cloudtrail import check_record  # noqa: E402
from bot.checks.grouping import HIGH_RISK_EVENTS  # noqa: E402
from tests.fakes.aws_standin import AwsStandIn, root_report_csv  # noqa: E402
from tests.fakes.slack_api import FakeSlack  # noqa: E402
from tests.harness import Serve, free_port, serve_env  # noqa: E402
from tests.records import root_call_record, root_login_record  # noqa: E402
from tests.store.conftest import create_database, drop_database  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines

POSTGRES_URL = "ROOTCHECK_TEST_POSTGRES_URL"
POSTGRES_CTL = "ROOTCHECK_TEST_POSTGRES_CTL"
SECTION = "Fault-injection soak (issue 12)"
ADMIN, OWNER = "U0ADMIN", "U0OWNER"
MAIN, PAYMENTS, OPS = "C0SOAKMAIN", "C0SOAKPAY", "C0SOAKOPS"
ACCOUNTS = {  # id -> (name, channel or None for ROOTCHECK_CHANNEL, owners)
    "210000000001": ("soak-payments", PAYMENTS, [OWNER]),
    "210000000002": ("soak-ops", OPS, []),
    "210000000003": ("soak-sandbox", None, []),
    "210000000004": ("soak-legacy", None, []),  # its credential report shows an active root access key
}
REGIONS = ("us-east-1", "eu-west-1")
DEFAULT_RATE = 2.0  # the stand-in's LookupEvents limit per account and Region (AWS's)
REPLICA_FAULTS = ("kill9", "sigterm", "pg_restart")
FAULT_KINDS = ("kill9", "sigterm", "slack_burst", "pg_restart", "aws_throttle", "aws_deny")
FAULT_WEIGHTS = {"kill9": 3, "sigterm": 3, "slack_burst": 4, "pg_restart": 2, "aws_throttle": 3, "aws_deny": 3}
FAULT_NAMES = {
    "kill9": "kill -9 of a replica (the scheduler's leader or the standby, at random), started again after 0-3 s",
    "sigterm": "SIGTERM of a replica (leader or standby; it must exit 0), started again after 0-3 s",
    "slack_burst": "Slack 429 (Retry-After 1-3 s) or 5xx (500/502/503) on every method for 2-15 s",
    "pg_restart": "PostgreSQL restarted under both replicas: `pg_ctl restart -m fast`, or stopped (`-m fast`, or "
    "`-m immediate`: a crash) and started again 1-8 s later",
    "aws_throttle": "LookupEvents throttling storm on 1-4 accounts (limit 0 or 0.3/s) for 5-20 s",
    "aws_deny": "AccessDenied on random calls of one account (LookupEvents, IAM, everything, or AssumeRole) for 5-20 s",
}
RECOVERY_LIMIT = 90.0  # /healthz 200 on both replicas within this after a replica or PostgreSQL fault
STALL_LIMIT = 360.0  # quiescing: no progress for this long is a hang (an abandoned claim waits 5 minutes)

SPAN = {"session": 15, "failures": 200, "key_use": 20, "temporary_high_risk": 0}  # seconds from first to last record
READS = {
    "ListBuckets": "s3",
    "DescribeInstances": "ec2",
    "GetAccountSummary": "iam",
    "ListUsers": "iam",
    "DescribeTrails": "cloudtrail",
}
WRITES = {"RunInstances": "ec2", "AttachUserPolicy": "iam", "PutObject": "s3", "CreateBucket": "s3"}
RISKY = {
    "StopLogging": "cloudtrail",
    "PutBucketPolicy": "s3",
    "CreateAccessKey": "iam",
    "DeleteDetector": "guardduty",
    "UpdateTrail": "cloudtrail",
}
assert set(RISKY) <= HIGH_RISK_EVENTS

INVARIANTS = {
    "posted_once": "every alert row is `posted` and has exactly one top-level message with its id in the "
    "metadata, in its channel at its ts; no id has two messages; no message names an unknown id",
    "findings_counted": "every finding of the ledger is stored and placed: a sign-in in the session alert it "
    "opened, a high-risk call in an alert of its own id, any finding in one alert (two for a "
    "high-risk call inside a session or credentials alert); no stored root finding is "
    "missing from the ledger; no finding waits or is held",
    "counts_match": "each alert's `count` equals its member rows, and the `count` in the metadata of its "
    "message as Slack shows it at the end",
    "acks_survived": "every ack the clicker made is stored (`acked_by`), its final Slack message shows "
    '"Acknowledged by" without the button, its thread has one ack audit reply; no other '
    "alert is acknowledged",
    "replies_once": "no thread reply twice (reply metadata `rootcheck_reply` ids and the `rootcheck_summary` "
    "unique per thread), every stored reply posted once at its ts; no owner's question twice",
    "queue_drained": "the queue is empty and its dead-letter queue holds nothing",
    "sigterm_clean": "every SIGTERM: exit 0, and no claim or edit lease left behind (unless the log says a "
    "job outlived the 8 s grace)",
    "healthz_recovers": "after every replica or PostgreSQL fault both replicas answer /healthz 200 within "
    f"{RECOVERY_LIMIT:g} s, every restart listens at the first try, and at the end both are "
    "healthy with exactly one leader",
    "clicks_answered": "every signed click a running replica received was answered 200",
    "quiesced": "once the faults stop, everything pending is done (no stall of 6 minutes)",
}


@dataclass
class Config:
    seconds: float = 600.0  # of faults and events; quiescing comes after
    seed: int = 12
    interval: float = 3.0  # ROOTCHECK_SWEEP_INTERVAL
    event_gap: tuple[float, float] = (2.0, 6.0)  # between two scenarios of the driver
    fault_gap: tuple[float, float] = (3.0, 9.0)  # between two faults
    ack_share: float = 0.35  # of the posted alerts, acknowledged by the clicker
    form: str = "long"

    @classmethod
    def short(cls, seed: int = 12) -> Config:
        return cls(seconds=75.0, seed=seed, form="short")


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# --- the ledger: every event sent, and the finding it must give ---------------------------------


@dataclass
class Entry:
    id: str
    kind: str
    account: str
    event_name: str
    scenario: str
    late: bool
    paths: set[str] = field(default_factory=set)  # cloudtrail, queue
    sent: int = 0  # deliveries in all (CloudTrail and queue together)


class Ledger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: dict[str, Entry] = {}
        self.scenarios: Counter = Counter()

    def note(self, record: dict, scenario: str, late: bool, path: str) -> str:
        finding = check_record(record)
        assert finding is not None, f"the soak sent a record that gives no finding: {record}"
        with self._lock:
            entry = self.entries.setdefault(
                finding.id, Entry(finding.id, finding.kind, finding.account_id, record["eventName"], scenario, late)
            )
            entry.paths.add(path)
            entry.sent += 1
        return finding.id

    def snapshot(self) -> dict[str, Entry]:
        with self._lock:
            return dict(self.entries)


# --- the replicas --------------------------------------------------------------------------------


class Replica:
    def __init__(self, slot: int, env: dict, logs: Path):
        self.slot = slot
        self.env = env
        self.log = logs / f"replica-{slot}.log"
        self.serve: Serve | None = None
        self.pids: list[int] = []
        self.start_failures: list[str] = []

    def start(self, attempts: int = 3) -> None:
        for _ in range(attempts):
            serve = Serve(dict(self.env, PORT=str(free_port())), self.log)
            with open(self.log, "ab") as out:
                out.write(f"----- soak: start {datetime.now(UTC).isoformat()}\n".encode())
            try:
                serve.start(wait=True)
            except (RuntimeError, TimeoutError) as exc:
                self.start_failures.append(f"replica {self.slot}: {exc}")
                serve.kill()
                time.sleep(1.0)
                continue
            self.serve = serve
            self.pids.append(serve.process.pid)
            return
        raise RuntimeError(f"replica {self.slot} did not start in {attempts} attempts")

    @property
    def alive(self) -> bool:
        return self.serve is not None and self.serve.process.poll() is None

    @property
    def holder(self) -> str:
        return f"{socket.gethostname()}:{self.serve.process.pid}"

    def health(self) -> tuple[int | None, dict]:
        serve = self.serve
        if serve is None or serve.process.poll() is not None:
            return None, {}
        try:
            return serve.health()
        except (OSError, ValueError):
            return None, {}


# --- the world: fakes, queue, database, replicas -------------------------------------------------


class World:
    def __init__(self, config: Config, server_url: str, workdir: Path):
        self.config = config
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.slack = FakeSlack().start()
        self.aws = AwsStandIn()
        self.aws.start()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        self.sqs = boto3.client(
            "sqs",
            endpoint_url=self.moto_url,
            region_name="us-east-1",
            aws_access_key_id="soak",
            aws_secret_access_key="soak",
        )
        name = f"rootcheck-soak-{uuid.uuid4().hex[:8]}"
        self.dlq = self.sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=self.dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.queue = self.sqs.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": "5",  # a replica killed holding a batch: redelivered 5 s later
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "50"}),
            },
        )["QueueUrl"]
        self.database = create_database(server_url)
        self.db = create_engine(self.database, pool_pre_ping=True, pool_size=4, max_overflow=4)
        for channel in (MAIN, PAYMENTS, OPS):
            self.slack.add_channel(channel, members=[ADMIN, "U0MEMBER"])
        self.slack.add_user(OWNER, name="owner")
        # Slack's own limits, on all the time: posts 1/s per channel (a burst of 3), chat.update Tier 3
        self.slack.set_rate_limit("chat.postMessage", per_second=1, burst=3, per_channel=True)
        self.slack.set_rate_limit("chat.update", per_minute=50)
        accounts_file = workdir / "accounts.yml"
        entries = []
        for account, (label, channel, owners) in ACCOUNTS.items():
            report = (
                root_report_csv(account, key1_active=True, key1_last_rotated="2025-02-03T04:05:06+00:00")
                if label == "soak-legacy"
                else None
            )
            self.aws.add_account(account, alias=label, report_state="complete", report_csv=report)
            entry = {"id": account, "name": label, **({"channel": channel} if channel else {})}
            if owners:
                entry["owners"] = owners
            entries.append(entry)
        accounts_file.write_text(yaml.safe_dump(entries))
        env = serve_env(
            self.slack,
            self.aws.env() | {"AWS_ENDPOINT_URL_SQS": self.moto_url},
            self.database,
            ROOTCHECK_CHANNEL=MAIN,
            ROOTCHECK_ACCOUNTS_FILE=str(accounts_file),
            ROOTCHECK_QUEUE_URL=self.queue,
            ROOTCHECK_SWEEP_INTERVAL=f"{config.interval:g}s",
            ROOTCHECK_REGIONS=",".join(REGIONS),
            ROOTCHECK_ADMINS=ADMIN,
            ROOTCHECK_REMIND_AFTER="20s",
            ROOTCHECK_CONFIRM_TIMEOUT="20s",
        )
        self.replicas = [Replica(0, env, self.logs), Replica(1, env, self.logs)]
        self.replica_lock = threading.Lock()  # the injector swaps processes; the clicker reads them

    def rows(self, sql: str, **params) -> list:
        with self.db.connect() as conn:
            return conn.execute(text(sql), params).all()

    def queue_depth(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    def close(self) -> list[int | None]:
        codes = []
        for replica in self.replicas:
            if replica.alive:
                codes.append(replica.serve.stop(signal.SIGTERM, timeout=30))
        self.db.dispose()
        for stop in (self.slack.close, self.aws.stop, self.moto.stop):
            try:
                stop()
            except Exception:  # noqa: BLE001 - tearing down; the results are already taken
                pass
        return codes


# --- the driver: root events, some late, some twice, some only on the queue ----------------------


def _ip(rng: random.Random) -> str:
    return f"{rng.choice(['198.51.100', '203.0.113'])}.{rng.randint(1, 254)}"


def _key(rng: random.Random, prefix: str) -> str:
    return prefix + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))


def _envelope(record: dict) -> str:
    source = "aws.signin" if record["eventName"] == "ConsoleLogin" else "aws." + record["eventSource"].split(".")[0]
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "AWS API Call via CloudTrail",
            "source": source,
            "account": record["recipientAccountId"],
            "time": record["eventTime"],
            "region": record["awsRegion"],
            "resources": [],
            "detail": record,
        }
    )


class Driver(threading.Thread):
    def __init__(self, world: World, ledger: Ledger, rng: random.Random, stop: threading.Event):
        super().__init__(name="soak-driver", daemon=True)
        self.world, self.ledger, self.rng, self.stop_event = world, ledger, rng, stop
        self.later: list[tuple[float, dict, str]] = []  # (when, record, scenario): the second delivery
        self.sent = Counter()
        self.error: str | None = None
        self.last_sent = time.time()

    def run(self) -> None:
        try:
            while not self.stop_event.wait(self.rng.uniform(*self.world.config.event_gap)):
                self.scenario()
                self.send_due()
            for _, record, scenario in self.later:  # the second deliveries still owed
                self.deliver(record, scenario, twice=True)
            self.later.clear()
        except Exception:  # noqa: BLE001 - the soak reports it and fails
            self.error = traceback.format_exc()

    def scenario(self) -> None:
        rng = self.rng
        account = rng.choice(list(ACCOUNTS))
        kind = rng.choices(["session", "failures", "key_use", "temporary_high_risk"], [5, 2, 2, 1])[0]
        late = rng.random() < 0.25
        # every record is in the past when it is sent (the lookups end at "now"): the scenario's span back
        lag = timedelta(minutes=rng.uniform(10, 45)) if late else timedelta(seconds=rng.uniform(2, 20))
        start = now_utc() - lag - timedelta(seconds=SPAN[kind])
        records = getattr(self, f"_{kind}")(account, start)
        name = f"{kind}{' (late)' if late else ''}"
        self.ledger.scenarios[name] += 1
        for record in records:
            self.deliver(record, name, twice=False)
            if rng.random() < 0.2:  # the same record arrives again, later
                self.later.append((time.time() + rng.uniform(3, 30), record, name))

    def send_due(self) -> None:
        due = [item for item in self.later if item[0] <= time.time()]
        self.later = [item for item in self.later if item[0] > time.time()]
        for _, record, scenario in due:
            self.deliver(record, scenario, twice=True)

    def deliver(self, record: dict, scenario: str, twice: bool) -> None:
        roll = self.rng.random()
        paths = ["cloudtrail"] if roll < 0.6 else ["cloudtrail", "queue"] if roll < 0.85 else ["queue"]
        for path in paths:
            if path == "cloudtrail":
                self.world.aws.add_events(record["recipientAccountId"], record["awsRegion"], [record])
            else:
                for _ in range(self.rng.choice([1, 1, 2])):  # EventBridge delivers at least once
                    self.world.sqs.send_message(QueueUrl=self.world.queue, MessageBody=_envelope(record))
                    self.sent["queue messages"] += 1
            self.ledger.note(record, scenario, "late" in scenario, path)
        self.sent["deliveries"] += 1
        self.sent["second deliveries"] += twice
        self.last_sent = time.time()

    # scenarios ------------------------------------------------------------------------------
    def _session(self, account: str, start: datetime) -> list[dict]:
        rng = self.rng
        ip, key = _ip(rng), _key(rng, "ASIA")
        records = [root_login_record(account, start, mfa_used=rng.random() < 0.4, source_ip=ip)]
        for n in range(rng.randint(1, 5)):
            name, source = rng.choice(list({**READS, **WRITES}.items()))
            records.append(
                root_call_record(
                    account,
                    start + timedelta(seconds=2 * n + 2),
                    name,
                    key=key,
                    source_ip=ip,
                    read_only=name in READS,
                    region=rng.choice(REGIONS),
                    event_source=f"{source}.amazonaws.com",
                )
            )
        if rng.random() < 0.25:
            name, source = rng.choice(list(RISKY.items()))
            records.append(
                root_call_record(
                    account,
                    start + timedelta(seconds=15),
                    name,
                    key=key,
                    source_ip=ip,
                    read_only=False,
                    event_source=f"{source}.amazonaws.com",
                )
            )
        return records

    def _failures(self, account: str, start: datetime) -> list[dict]:
        rng = self.rng
        ips = [_ip(rng) for _ in range(rng.randint(1, 4))]
        return [
            root_login_record(account, start + timedelta(seconds=20 * n), success=False, source_ip=rng.choice(ips))
            for n in range(rng.choice([1, 2, 3, 5, 11]))
        ]

    def _key_use(self, account: str, start: datetime) -> list[dict]:
        rng = self.rng
        key, ip = _key(rng, "AKIA"), _ip(rng)
        records = []
        for n in range(rng.randint(1, 4)):
            name, source = rng.choice(list({**READS, **WRITES}.items()))
            records.append(
                root_call_record(
                    account,
                    start + timedelta(seconds=3 * n),
                    name,
                    key=key,
                    source_ip=ip,
                    console=False,
                    read_only=name in READS,
                    region=rng.choice(REGIONS),
                    event_source=f"{source}.amazonaws.com",
                )
            )
        if rng.random() < 0.3:
            records.append(
                root_call_record(
                    account,
                    start + timedelta(seconds=20),
                    "CreateAccessKey",
                    key=key,
                    source_ip=ip,
                    console=False,
                    read_only=False,
                    event_source="iam.amazonaws.com",
                )
            )
        return records

    def _temporary_high_risk(self, account: str, start: datetime) -> list[dict]:
        name, source = self.rng.choice(list(RISKY.items()))
        return [
            root_call_record(
                account,
                start,
                name,
                key=_key(self.rng, "ASIA"),
                source_ip=_ip(self.rng),
                console=False,
                read_only=False,
                event_source=f"{source}.amazonaws.com",
            )
        ]


# --- the clicker: acknowledge some posted alerts, through either replica -------------------------


@dataclass
class Ack:
    alert: str
    channel: str
    ts: str
    clicks: int = 0
    last_click: float = 0.0
    stored_after: float | None = None  # seconds from the first click to the stored ack
    first_click: float = 0.0


class Clicker(threading.Thread):
    RECLICK = 6.0  # a person who sees no change clicks again

    def __init__(self, world: World, rng: random.Random, stop: threading.Event):
        super().__init__(name="soak-clicker", daemon=True)
        self.world, self.rng, self.stop_event = world, rng, stop
        self.decided: set[str] = set()
        self.acks: dict[str, Ack] = {}
        self.answers = Counter()  # HTTP status of each click (or the connection error)
        self.bad_answers: list[str] = []
        self.error: str | None = None
        self.finishing = threading.Event()  # stop choosing new alerts; finish the acks started

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                if not self.finishing.is_set():
                    self.choose()
                self.follow_up()
                if self.finishing.is_set() and self.outstanding() == 0:
                    return
                self.stop_event.wait(self.rng.uniform(0.5, 2.0))
        except Exception:  # noqa: BLE001
            self.error = traceback.format_exc()

    def outstanding(self) -> int:
        return sum(1 for a in self.acks.values() if a.stored_after is None)

    def choose(self) -> None:
        for channel in (MAIN, PAYMENTS, OPS):
            for message in self.world.slack.messages(channel):
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                alert = payload.get("finding_id") or payload.get("digest_id")
                if metadata.get("event_type") not in ("rootcheck_finding", "rootcheck_digest") or not alert:
                    continue
                if alert in self.decided:
                    continue
                self.decided.add(alert)
                if self.rng.random() < self.world.config.ack_share:
                    self.acks[alert] = Ack(alert, channel, message["ts"])

    def follow_up(self) -> None:
        pending = [a for a in self.acks.values() if a.stored_after is None]
        if not pending:
            return
        try:
            stored = {r.id for r in self.world.rows("SELECT id FROM alerts WHERE acked_by IS NOT NULL")}
        except SQLAlchemyError:
            return  # PostgreSQL is restarting
        for ack in pending:
            if ack.alert in stored:
                ack.stored_after = time.monotonic() - ack.first_click
            elif time.monotonic() - ack.last_click >= self.RECLICK:
                self.click(ack)

    def click(self, ack: Ack) -> None:
        with self.world.replica_lock:
            live = [r.serve for r in self.world.replicas if r.alive]
        if not live:
            return
        serve = self.rng.choice(live)
        ack.clicks += 1
        ack.last_click = time.monotonic()
        if ack.clicks == 1:
            ack.first_click = ack.last_click
        try:
            status, body, _ = serve.click(ack.alert, ack.ts, user=ADMIN, channel=ack.channel)
        except OSError as exc:  # the replica went down under the click (a fault): a person clicks again
            self.answers[f"no answer ({exc.__class__.__name__})"] += 1
            return
        self.answers[str(status)] += 1
        if status != 200 and serve.process.poll() is None:
            self.bad_answers.append(f"{ack.alert}: HTTP {status} {body[:200]!r}")


# --- the fault injector --------------------------------------------------------------------------


@dataclass
class Fault:
    kind: str
    at: float  # seconds from the start of the fault phase
    target: str
    detail: str = ""
    recovered_after: float | None = None  # replica and PostgreSQL faults: /healthz 200 on both again
    exit_code: int | None = None
    skipped: str | None = None
    problems: list[str] = field(default_factory=list)


def schedule(config: Config, rng: random.Random) -> list[tuple[float, str, dict]]:
    """(gap before it, kind, parameters): every kind once first (shuffled, at the shorter gaps, so that
    the short form has them all well before its end even with the replica faults' recoveries), then
    at random."""
    kinds = list(FAULT_KINDS)
    rng.shuffle(kinds)
    out, elapsed = [], 0.0
    low, high = config.fault_gap
    while True:
        gap = rng.uniform(low, (low + high) / 2 if kinds else high)
        kind = kinds.pop(0) if kinds else rng.choices(list(FAULT_WEIGHTS), list(FAULT_WEIGHTS.values()))[0]
        elapsed += gap
        if elapsed > config.seconds:
            return out
        params: dict[str, Any] = {}
        if kind in ("kill9", "sigterm"):
            params = {"role": rng.choice(["leader", "standby"]), "pause": rng.uniform(0, 3)}
        elif kind == "slack_burst":
            status = rng.choice([429, 500, 502, 503])
            params = {
                "status": status,
                "seconds": rng.uniform(2, 15),
                "retry_after": rng.randint(1, 3) if status == 429 else None,
            }
        elif kind == "aws_throttle":
            params = {
                "accounts": rng.sample(list(ACCOUNTS), rng.randint(1, len(ACCOUNTS))),
                "rate": rng.choice([0.0, 0.3]),
                "seconds": rng.uniform(5, 20),
            }
        elif kind == "aws_deny":
            params = {
                "account": rng.choice(list(ACCOUNTS)),
                "seconds": rng.uniform(5, 20),
                "deny": rng.choices(["cloudtrail:LookupEvents", "*", "iam:*", "assume_role"], [3, 2, 1, 1])[0],
            }
        elif kind == "pg_restart":
            down = rng.random() < 0.5
            params = {
                "mode": rng.choice(["fast", "immediate"]) if down else "fast",
                "down": rng.uniform(1, 8) if down else 0.0,
            }
        out.append((gap, kind, params))


class Injector(threading.Thread):
    def __init__(self, world: World, plan: list[tuple[float, str, dict]], ctl: list[str] | None, stop: threading.Event):
        super().__init__(name="soak-injector", daemon=True)
        self.world, self.plan, self.ctl, self.stop_event = world, plan, ctl, stop
        self.faults: list[Fault] = []
        self.timers: list[threading.Timer] = []
        self.error: str | None = None
        self.started = time.monotonic()
        self._aws_lock = threading.Lock()
        self._throttled: Counter = Counter()  # account -> storms in progress
        self._denied: Counter = Counter()

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 1)

    def run(self) -> None:
        try:
            for gap, kind, params in self.plan:
                if self.stop_event.wait(gap):
                    return
                getattr(self, f"_{kind}")(**params)
        except Exception:  # noqa: BLE001
            self.error = traceback.format_exc()

    def end(self) -> None:
        """Switch every fault off and make sure both replicas run."""
        for timer in self.timers:
            timer.cancel()
        self.world.slack.outage(0)
        self.world.slack.clear_faults()
        for account in ACCOUNTS:
            self.world.aws.add_account(account, rate_per_second=DEFAULT_RATE, deny=(), deny_assume_role=False)
        with self.world.replica_lock:
            for replica in self.world.replicas:
                if not replica.alive:
                    replica.start()

    # replica and PostgreSQL faults ------------------------------------------------------------
    def _pick(self, role: str) -> Replica:
        """The replica that has this role now (the scheduler's leader, or the other)."""
        roles = {r.slot: r.health()[1].get("scheduler") for r in self.world.replicas}
        return next(
            (r for r in self.world.replicas if roles[r.slot] == role), self.world.replicas[0 if role == "leader" else 1]
        )

    def _kill9(self, role: str, pause: float) -> None:
        replica = self._pick(role)
        fault = Fault("kill9", self.elapsed(), role, detail=f"replica {replica.slot}, pid {replica.serve.process.pid}")
        self.faults.append(fault)
        with self.world.replica_lock:
            replica.serve.kill()
        fault.exit_code = replica.serve.process.returncode
        time.sleep(pause)
        self._restart(replica, fault)

    def _sigterm(self, role: str, pause: float) -> None:
        replica = self._pick(role)
        holder, pid = replica.holder, replica.serve.process.pid
        fault = Fault("sigterm", self.elapsed(), role, detail=f"replica {replica.slot}, pid {pid}")
        self.faults.append(fault)
        size = replica.log.stat().st_size
        asked = time.monotonic()
        with self.world.replica_lock:
            fault.exit_code = replica.serve.stop(signal.SIGTERM, timeout=30)
        took = time.monotonic() - asked
        fault.detail += f", exit {fault.exit_code} after {took:.1f} s"
        if fault.exit_code != 0:
            fault.problems.append(f"SIGTERM of pid {pid}: exit {fault.exit_code} after {took:.1f} s")
        left = self._claims_of(holder)
        if left:
            with open(replica.log, "rb") as log:
                log.seek(size)
                outlived = b"did not finish within" in log.read()
            fault.detail += f", left {', '.join(left)}" + (" (a job outlived the grace)" if outlived else "")
            if not outlived:
                fault.problems.append(f"SIGTERM of pid {pid} exited 0 but left {', '.join(left)}")
        time.sleep(pause)
        self._restart(replica, fault)

    def _claims_of(self, holder: str) -> list[str]:
        for _ in range(30):
            try:
                found = [
                    f"alert claim {r.id}"
                    for r in self.world.rows(
                        "SELECT id FROM alerts WHERE state = 'posting' AND claimed_by = :h", h=holder
                    )
                ]
                found += [
                    f"reply claim {r.id}"
                    for r in self.world.rows(
                        "SELECT id FROM replies WHERE state = 'posting' AND claimed_by = :h", h=holder
                    )
                ]
                found += [
                    f"question claim {r.alert_id}"
                    for r in self.world.rows(
                        "SELECT alert_id FROM questions WHERE state = 'posting' AND claimed_by = :h", h=holder
                    )
                ]
                found += [
                    f"edit lease {r.id}"
                    for r in self.world.rows("SELECT id FROM alerts WHERE editing_by LIKE :h", h=holder + "/%")
                ]
                return found
            except SQLAlchemyError:
                time.sleep(1.0)  # PostgreSQL restarting under a concurrent fault
        return ["(could not read the claims)"]

    def _pg_restart(self, mode: str, down: float) -> None:
        fault = Fault("pg_restart", self.elapsed(), "PostgreSQL")
        self.faults.append(fault)
        if not self.ctl:
            fault.skipped = f"{POSTGRES_CTL} is not set: PostgreSQL cannot be restarted here"
            return
        started = time.monotonic()
        steps = [["restart", "-m", mode]] if not down else [["stop", "-m", mode], ["start"]]
        for n, step in enumerate(steps):
            if n:
                time.sleep(down)
            result = subprocess.run([*self.ctl, *step], capture_output=True, timeout=120)
            if result.returncode != 0:
                fault.exit_code = result.returncode
                fault.problems.append(
                    f"pg_ctl {' '.join(step)} failed ({result.returncode}): "
                    f"{(result.stderr or result.stdout).decode(errors='replace')[-300:]}"
                )
        fault.detail = (
            f"restart -m {mode}" if not down else f"stop -m {mode}, start {down:.1f} s later"
        ) + f": up again after {time.monotonic() - started:.1f} s"
        self._wait_healthy(fault, started)

    def _restart(self, replica: Replica, fault: Fault) -> None:
        started = time.monotonic()
        failures = len(replica.start_failures)
        with self.world.replica_lock:
            replica.start()
        if len(replica.start_failures) > failures:
            fault.problems += replica.start_failures[failures:]
        fault.detail += f", new pid {replica.serve.process.pid}"
        self._wait_healthy(fault, started)

    def _wait_healthy(self, fault: Fault, since: float) -> None:
        deadline = since + RECOVERY_LIMIT
        while time.monotonic() < deadline:
            if all(r.health()[0] == 200 for r in self.world.replicas):
                fault.recovered_after = round(time.monotonic() - since, 1)
                return
            time.sleep(0.25)
        codes = [r.health()[0] for r in self.world.replicas]
        fault.problems.append(f"/healthz not 200 on both replicas {RECOVERY_LIMIT:g} s after it: {codes}")

    # Slack and AWS faults (they end by themselves) ---------------------------------------------
    def _slack_burst(self, status: int, seconds: float, retry_after: int | None) -> None:
        self.faults.append(
            Fault(
                "slack_burst",
                self.elapsed(),
                "every Slack method",
                detail=f"HTTP {status}{f' Retry-After {retry_after}' if retry_after else ''} for {seconds:.0f} s",
            )
        )
        self.world.slack.outage(seconds, status=status, retry_after=retry_after)

    def _aws_throttle(self, accounts: list[str], rate: float, seconds: float) -> None:
        self.faults.append(
            Fault(
                "aws_throttle",
                self.elapsed(),
                f"{len(accounts)} account(s)",
                detail=f"LookupEvents limit {rate:g}/s for {seconds:.0f} s",
            )
        )
        with self._aws_lock:
            for account in accounts:
                self._throttled[account] += 1
                self.world.aws.add_account(account, rate_per_second=rate)
        self._later(seconds, lambda: self._unthrottle(accounts))

    def _unthrottle(self, accounts: list[str]) -> None:
        with self._aws_lock:
            for account in accounts:
                self._throttled[account] -= 1
                if self._throttled[account] == 0:
                    self.world.aws.add_account(account, rate_per_second=DEFAULT_RATE)

    def _aws_deny(self, account: str, seconds: float, deny: str) -> None:
        self.faults.append(
            Fault(
                "aws_deny", self.elapsed(), ACCOUNTS[account][0], detail=f"AccessDenied on {deny} for {seconds:.0f} s"
            )
        )
        with self._aws_lock:
            self._denied[account] += 1
            if deny == "assume_role":
                self.world.aws.add_account(account, deny_assume_role=True)
            else:
                self.world.aws.add_account(account, deny=[deny])
        self._later(seconds, lambda: self._undeny(account))

    def _undeny(self, account: str) -> None:
        with self._aws_lock:
            self._denied[account] -= 1
            if self._denied[account] == 0:
                self.world.aws.add_account(account, deny=(), deny_assume_role=False)

    def _later(self, seconds: float, action: Callable[[], None]) -> None:
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        self.timers.append(timer)
        timer.start()


# --- quiescing and the invariants ----------------------------------------------------------------


def outstanding(world: World, ledger: Ledger, since: datetime, clicker: Clicker) -> dict[str, Any]:
    """What is not done yet; empty when everything is."""
    out: dict[str, Any] = {}
    rows = world.rows
    finished = rows(
        "SELECT count(*) AS n FROM sweeps WHERE finished_at IS NOT NULL AND started_at > :t",
        t=since.replace(tzinfo=None),
    )[0].n
    if finished < 3:
        out["sweeps after the last event"] = finished
    depth = world.queue_depth(world.queue)
    if depth:
        out["queue messages"] = depth
    stored = {r.id for r in rows("SELECT id FROM findings")}
    missing = sorted(set(ledger.snapshot()) - stored)
    if missing:
        out["ledger findings not stored"] = missing
    waiting = [r.id for r in rows("SELECT id FROM findings WHERE grouped_at IS NULL OR held")]
    if waiting:
        out["findings waiting or held"] = waiting
    unposted = {r.id: r.state for r in rows("SELECT id, state FROM alerts WHERE state IN ('pending', 'posting')")}
    if unposted:
        out["alerts not posted"] = unposted
    stale = [
        r.id
        for r in rows(
            "SELECT id FROM alerts WHERE state = 'posted' AND edit_failures < 8 AND (version > shown_version "
            "OR editing_by IS NOT NULL OR (\"grouping\" IN ('session', 'credentials') AND count > 1 AND "
            "(summary_state IS DISTINCT FROM 'posted' OR summary_shown_version < version)))"
        )
    ]
    if stale:
        out["alerts whose message is behind"] = stale
    replies = [r.id for r in rows("SELECT id FROM replies WHERE state IN ('pending', 'posting')")]
    if replies:
        out["replies not posted"] = replies
    questions = [
        f"{r.alert_id}:{r.user_id}"
        for r in rows("SELECT alert_id, user_id FROM questions WHERE state IN ('pending', 'posting')")
    ]
    if questions:
        out["questions not sent"] = questions
    unasked = [
        r.id
        for r in rows(
            "SELECT id FROM alerts WHERE state = 'posted' AND asked_at IS NULL AND "
            "\"grouping\" IN ('session', 'credentials')"
        )
    ]
    if unasked:
        out["alerts whose owners are not decided"] = unasked
    if clicker.outstanding():
        out["acks not stored yet"] = clicker.outstanding()
    return out


def abandoned(world: World) -> list[str]:
    """Claims held by processes that no longer run (and thread summary claims older than an edit's
    lease): the leader reconciles them after 5 minutes."""
    dead = {
        f"{socket.gethostname()}:{pid}"
        for r in world.replicas
        for pid in r.pids
        if r.serve is None or pid != r.serve.process.pid or not r.alive
    }
    found = [
        f"alert {r.id} ({r.claimed_at:%H:%M:%S})" if r.claimed_at else f"alert {r.id} (outcome unknown)"
        for r in world.rows("SELECT id, claimed_by, claimed_at FROM alerts WHERE state = 'posting'")
        if r.claimed_by in dead
    ]
    found += [
        f"reply {r.id}"
        for r in world.rows("SELECT id, claimed_by FROM replies WHERE state = 'posting'")
        if r.claimed_by in dead
    ]
    found += [
        f"question {r.alert_id}:{r.user_id}"
        for r in world.rows("SELECT alert_id, user_id, claimed_by FROM questions WHERE state = 'posting'")
        if r.claimed_by in dead
    ]
    # a thread summary's claim names no holder; an edit that lives ends within its 60-second lease
    found += [
        f"summary {r.id}"
        for r in world.rows(
            "SELECT id FROM alerts WHERE summary_state = 'posting' AND summary_claimed_at < :t",
            t=(datetime.now(UTC) - timedelta(seconds=60)).replace(tzinfo=None),
        )
    ]
    return found


def _brief(left: dict) -> str:
    return ", ".join(f"{k}: {len(v) if isinstance(v, (list, dict)) else v}" for k, v in left.items()) or "nothing"


def quiesce(
    world: World, ledger: Ledger, since: datetime, clicker: Clicker, progress: Callable[[str], None] = lambda _: None
) -> tuple[bool, float, dict]:
    """Wait until nothing is outstanding, twice a sweep interval apart; False after a stall."""
    started = time.monotonic()
    last, changed = None, time.monotonic()
    calm_since = None
    while True:
        try:
            left = outstanding(world, ledger, since, clicker)
        except SQLAlchemyError as exc:
            left = {"store": exc.__class__.__name__}
        key = json.dumps(left, sort_keys=True, default=str)
        if key != last:
            if last is not None and _brief(left) != _brief(json.loads(last)):
                progress(f"quiescing, {time.monotonic() - started:.0f} s: outstanding {_brief(left)}")
            last, changed = key, time.monotonic()
        if not left:
            calm_since = calm_since or time.monotonic()
            if time.monotonic() - calm_since >= 2 * world.config.interval:
                return True, round(time.monotonic() - started, 1), {}
        else:
            calm_since = None
        if time.monotonic() - changed > STALL_LIMIT:
            return False, round(time.monotonic() - started, 1), left
        time.sleep(1.0)


@dataclass
class Result:
    name: str
    ok: bool
    checked: int
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.name} ({self.checked} checked)" + (
            "".join(f"\n    - {p}" for p in self.problems[:20])
        )


def _payload(message: dict) -> tuple[str | None, dict]:
    metadata = message.get("metadata") or {}
    return metadata.get("event_type"), metadata.get("event_payload") or {}


def check(
    world: World,
    ledger: Ledger,
    clicker: Clicker,
    injector: Injector,
    quiet: tuple[bool, float, dict],
    final_codes: list[int | None],
) -> list[Result]:
    results: dict[str, Result] = {name: Result(name, True, 0) for name in INVARIANTS}

    def fail(name: str, problem: str) -> None:
        results[name].ok = False
        results[name].problems.append(problem)

    rows = world.rows
    alerts = {r.id: r for r in rows("SELECT * FROM alerts")}
    members: dict[str, set[str]] = defaultdict(set)
    of_finding: dict[str, set[str]] = defaultdict(set)
    for r in rows("SELECT alert_id, finding_id FROM alert_findings"):
        members[r.alert_id].add(r.finding_id)
        of_finding[r.finding_id].add(r.alert_id)
    findings = {r.id: r for r in rows("SELECT id, kind, event_name, grouped_at, held FROM findings")}
    replies = {r.id: r for r in rows("SELECT id, alert_id, state, ts FROM replies")}
    questions = {(r.alert_id, r.user_id): r for r in rows("SELECT alert_id, user_id, state, ts FROM questions")}

    # 1. every alert posted exactly once
    slack = world.slack
    tops: dict[str, list[tuple[str, dict]]] = defaultdict(list)  # alert id -> [(channel, message)]
    for channel in (MAIN, PAYMENTS, OPS):
        for message in slack.messages(channel):
            kind, payload = _payload(message)
            if message.get("bot_id") is None:
                continue
            key = (
                payload.get("finding_id")
                if kind == "rootcheck_finding"
                else payload.get("digest_id")
                if kind == "rootcheck_digest"
                else None
            )
            if key is None:
                fail(
                    "posted_once",
                    f"a top-level bot message without an alert id in {channel}: {message.get('text', '')[:80]!r}",
                )
                continue
            tops[key].append((channel, message))
    results["posted_once"].checked = len(alerts)
    for alert_id, alert in alerts.items():
        if alert.state != "posted":
            fail("posted_once", f"alert {alert_id} is {alert.state} ({alert.last_error})")
            continue
        found = tops.get(alert_id, [])
        if len(found) != 1:
            fail("posted_once", f"alert {alert_id} has {len(found)} top-level messages")
        elif (found[0][0], found[0][1]["ts"]) != (alert.channel, alert.ts):
            fail(
                "posted_once",
                f"alert {alert_id} is recorded at {alert.channel}/{alert.ts}, Slack has it at "
                f"{found[0][0]}/{found[0][1]['ts']}",
            )
    for key, found in tops.items():
        if key not in alerts:
            fail("posted_once", f"{len(found)} message(s) for {key}, which is no alert")

    # 2. every finding counted in its alert(s)
    entries = ledger.snapshot()
    results["findings_counted"].checked = len(entries)
    for finding_id, entry in entries.items():
        row = findings.get(finding_id)
        if row is None:
            fail(
                "findings_counted",
                f"{entry.kind} {entry.event_name} ({entry.scenario}, via "
                f"{'+'.join(sorted(entry.paths))}) {finding_id} was never stored",
            )
            continue
        homes = of_finding.get(finding_id, set())
        risky = entry.kind == "root_activity" and entry.event_name in HIGH_RISK_EVENTS
        if row.grouped_at is None or row.held or not homes:
            fail("findings_counted", f"{finding_id} ({entry.kind} {entry.event_name}) is in no alert")
            continue
        if entry.kind == "root_console_login" and homes != {finding_id}:
            fail("findings_counted", f"sign-in {finding_id} is in {sorted(homes)}, not its own session alert")
        if risky and finding_id not in homes:
            fail("findings_counted", f"high-risk {entry.event_name} {finding_id} has no alert of its own")
        if len(homes) > 2 or (len(homes) == 2 and not (risky and finding_id in homes)):
            fail("findings_counted", f"{finding_id} ({entry.kind} {entry.event_name}) is in {len(homes)} alerts")
    for finding_id, row in findings.items():
        if (
            row.kind in ("root_console_login", "root_console_login_failed", "root_activity")
            and finding_id not in entries
        ):
            fail("findings_counted", f"stored {row.kind} {finding_id} was never sent")
        elif finding_id not in entries and not of_finding.get(finding_id):
            fail("findings_counted", f"stored {row.kind} {finding_id} is in no alert")

    # 3. counts: rows, column and Slack's final message agree
    results["counts_match"].checked = len(alerts)
    for alert_id, alert in alerts.items():
        if alert.count != len(members[alert_id]):
            fail("counts_match", f"alert {alert_id}: count {alert.count}, {len(members[alert_id])} member rows")
        if alert.state == "posted" and alert.channel and alert.ts:
            message = slack.message(alert.channel, alert.ts)
            kind, payload = _payload(message or {})
            shown = payload.get("count") if kind in ("rootcheck_finding", "rootcheck_digest") else None
            if shown != alert.count:
                fail("counts_match", f"alert {alert_id}: count {alert.count}, Slack shows {shown}")

    # 4. acks survived
    acked = {a.alert: a for a in clicker.acks.values() if a.stored_after is not None}
    results["acks_survived"].checked = len(acked)
    for alert_id, ack in clicker.acks.items():
        if ack.stored_after is None:
            fail("acks_survived", f"alert {alert_id}: {ack.clicks} click(s), the ack was never stored")
    for alert_id in acked:
        alert = alerts.get(alert_id)
        if alert is None or alert.acked_by != ADMIN:
            fail("acks_survived", f"alert {alert_id}: acked_by is {getattr(alert, 'acked_by', None)!r} at the end")
            continue
        message = slack.message(alert.channel, alert.ts) or {}
        blob = json.dumps(message.get("blocks") or [])
        if f"Acknowledged by <@{ADMIN}>" not in blob:
            fail("acks_survived", f"alert {alert_id}: the final message does not show the ack")
        if '"rootcheck_ack"' in blob:
            fail("acks_survived", f"alert {alert_id}: the final message still has the Acknowledge button")
        audits = [
            r for r in slack.replies(alert.channel, alert.ts) if _payload(r)[1].get("reply_id") == f"ack:{alert_id}"
        ]
        if len(audits) != 1:
            fail("acks_survived", f"alert {alert_id}: {len(audits)} ack audit replies")
    for alert_id, alert in alerts.items():
        if alert.acked_by is not None and alert_id not in acked:
            fail("acks_survived", f"alert {alert_id} is acknowledged by {alert.acked_by}, nobody clicked it")

    # 5. no reply twice, no question twice
    seen_replies: Counter = Counter()
    checked = 0
    for alert_id, alert in alerts.items():
        if alert.state != "posted" or not alert.ts:
            continue
        ids: Counter = Counter()
        for reply in slack.replies(alert.channel, alert.ts):
            if reply.get("bot_id") is None:
                continue
            kind, payload = _payload(reply)
            checked += 1
            if kind == "rootcheck_reply":
                ids[payload.get("reply_id")] += 1
                seen_replies[payload.get("reply_id")] += 1
            elif kind == "rootcheck_summary":
                ids[f"summary:{payload.get('alert_id')}"] += 1
            else:
                fail("replies_once", f"alert {alert_id}: a thread reply without reply metadata")
        for key, n in ids.items():
            if n > 1:
                fail("replies_once", f"alert {alert_id}: {key} posted {n} times in its thread")
        summary = ids.get(f"summary:{alert_id}", 0)
        if alert.summary_ts and summary != 1:
            fail("replies_once", f"alert {alert_id}: its summary is recorded, {summary} in the thread")
    for reply_id, reply in replies.items():
        if reply.state != "posted":
            fail("replies_once", f"reply {reply_id} is {reply.state}")
        elif seen_replies.get(reply_id) != 1:
            fail("replies_once", f"reply {reply_id} is in Slack {seen_replies.get(reply_id, 0)} times")
    for reply_id in seen_replies:
        if reply_id not in replies:
            fail("replies_once", f"reply {reply_id} is in Slack but not in the store")
    dm = slack.dm_channel(OWNER)
    asked: Counter = Counter()
    for message in slack.messages(dm) if dm else []:
        kind, payload = _payload(message)
        if kind == "rootcheck_question":
            asked[payload.get("question_id")] += 1
    for (alert_id, user), question in questions.items():
        n = asked.get(f"{alert_id}:{user}", 0)
        if question.state == "posted" and n != 1:
            fail("replies_once", f"question {alert_id}:{user} is posted, {n} in the direct message")
        elif question.state != "posted":
            fail("replies_once", f"question {alert_id}:{user} is {question.state}")
    for key, n in asked.items():
        if n > 1:
            fail("replies_once", f"question {key} sent {n} times")
    results["replies_once"].checked = checked + sum(asked.values())

    # 6. the queue
    results["queue_drained"].checked = 2
    for name, url in (("queue", world.queue), ("dead-letter queue", world.dlq)):
        depth = world.queue_depth(url)
        if depth:
            fail("queue_drained", f"the {name} holds {depth} message(s)")

    # 7, 8. SIGTERM, health
    terms = [f for f in injector.faults if f.kind == "sigterm"]
    results["sigterm_clean"].checked = len(terms) + len(final_codes)
    for fault in terms:
        for problem in fault.problems:
            fail("sigterm_clean", problem)
    for code in final_codes:
        if code != 0:
            fail("sigterm_clean", f"the final SIGTERM: exit {code}")
    checked = [f for f in injector.faults if f.kind in REPLICA_FAULTS and not f.skipped]
    results["healthz_recovers"].checked = len(checked) + 1
    for fault in checked:
        for problem in fault.problems:
            if not problem.startswith("SIGTERM"):
                fail("healthz_recovers", f"{fault.kind} at {fault.at} s: {problem}")
        if fault.recovered_after is None and not fault.problems:
            fail("healthz_recovers", f"{fault.kind} at {fault.at} s: never healthy again")
    roles = [r.health() for r in world.replicas]
    if [s for s, _ in roles] != [200, 200]:
        fail("healthz_recovers", f"at the end /healthz answers {[s for s, _ in roles]}")
    if sorted(b.get("scheduler", "?") for _, b in roles) != ["leader", "standby"]:
        fail("healthz_recovers", f"at the end the schedulers are {[b.get('scheduler') for _, b in roles]}")

    results["clicks_answered"].checked = sum(clicker.answers.values())
    for problem in clicker.bad_answers:
        fail("clicks_answered", problem)

    ok, took, left = quiet
    results["quiesced"].checked = 1
    if not ok:
        fail(
            "quiesced",
            f"no progress for {STALL_LIMIT:g} s after {took} s; still outstanding: "
            f"{json.dumps(left, default=str)[:1500]}",
        )
    return [results[name] for name in INVARIANTS]


# --- one soak ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    config: Config
    command: str
    results: list[Result]
    faults: list[Fault]
    stats: dict
    seconds: dict
    workdir: Path
    errors: list[str]
    ledger: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results) and not self.errors

    @property
    def skipped(self) -> list[str]:
        return sorted({f.skipped for f in self.faults if f.skipped})

    def summary(self) -> str:
        lines = [
            f"soak ({self.config.form}, seed {self.config.seed}): {'PASS' if self.ok else 'FAIL'}; logs in "
            f"{self.workdir}"
        ]
        lines += [f"  faults: {dict(Counter(f.kind for f in self.faults if not f.skipped))}"]
        lines += [f"  skipped: {s}" for s in self.skipped]
        lines += [f"  {k}: {v}" for k, v in self.stats.items()]
        lines += [f"  time: {self.seconds}"]
        lines += ["  " + r.line() for r in self.results]
        lines += [f"  error: {e}" for e in self.errors]
        return "\n".join(lines)


def postgres_ctl() -> list[str] | None:
    value = os.environ.get(POSTGRES_CTL, "").strip()
    return shlex.split(value) if value else None


def run(
    config: Config,
    server_url: str,
    workdir: Path,
    ctl: list[str] | None = None,
    command: str = "",
    progress: Callable[[str], None] = lambda _: None,
    keep_database: bool = False,
) -> Outcome:
    """One soak: start, drive under faults, quiesce, check. The database it made is dropped after
    (unless `keep_database`: then it is named in the result, to look into)."""
    started = time.monotonic()
    world = World(config, server_url, workdir)
    ledger = Ledger()
    errors: list[str] = []
    stop = threading.Event()
    final_codes: list[int | None] = []
    timings: dict[str, float] = {}
    injector = clicker = None
    try:
        world.replicas[0].start()
        world.replicas[1].start()
        progress(f"two replicas up on {world.database.rsplit('/', 1)[-1]}; {config.seconds:g} s of faults")
        plan = schedule(config, random.Random(f"{config.seed}:faults"))
        driver = Driver(world, ledger, random.Random(f"{config.seed}:events"), stop)
        clicker = Clicker(world, random.Random(f"{config.seed}:clicks"), threading.Event())
        injector = Injector(world, plan, ctl, stop)
        phase = time.monotonic()
        for thread in (driver, clicker, injector):
            thread.start()
        stop.wait(config.seconds)
        stop.set()
        injector.join(timeout=RECOVERY_LIMIT + 120)  # a replica fault in progress finishes first
        driver.join(timeout=60)
        injector.end()
        timings["faults"] = round(time.monotonic() - phase, 1)
        progress(f"faults off after {timings['faults']} s: {len(injector.faults)} injected; quiescing")
        clicker.finishing.set()
        last_event = datetime.fromtimestamp(driver.last_sent, UTC)
        left_behind = abandoned(world)
        if left_behind:
            progress(f"claims of killed replicas, reconciled after 5 minutes: {', '.join(left_behind)}")
        quiet = quiesce(world, ledger, last_event, clicker, progress)
        clicker.stop_event.set()
        clicker.join(timeout=30)
        timings["quiesce"] = quiet[1]
        for thread in (driver, clicker, injector):
            if thread.error:
                errors.append(f"{thread.name}: {thread.error}")
        results = check(world, ledger, clicker, injector, quiet, [])
        stats = _stats(world, ledger, driver, clicker)
        stats["claims left by killed replicas when the faults stopped"] = len(left_behind)
    except Exception:  # noqa: BLE001 - reported with whatever was gathered
        errors.append(traceback.format_exc())
        results, stats = [], {}
    finally:
        stop.set()
        if clicker is not None:
            clicker.stop_event.set()
        final_codes = world.close()
        try:
            if keep_database:
                progress(f"the database is kept: {world.database}")
            else:
                drop_database(world.database)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"dropping {world.database}: {exc}")
    if results:
        bad = [c for c in final_codes if c != 0]
        sigterm = next(r for r in results if r.name == "sigterm_clean")
        sigterm.checked += len(final_codes)
        if bad:
            sigterm.ok = False
            sigterm.problems.append(f"the final SIGTERM of the replicas: exit codes {final_codes}")
    timings["total"] = round(time.monotonic() - started, 1)
    outcome = Outcome(
        config,
        command,
        results,
        injector.faults if injector else [],
        stats,
        timings,
        workdir,
        errors,
        [{**e.__dict__, "paths": sorted(e.paths)} for e in ledger.snapshot().values()],
    )
    (workdir / "soak-result.json").write_text(json.dumps(_as_json(outcome), indent=1, default=str))
    return outcome


def _stats(world: World, ledger: Ledger, driver: Driver, clicker: Clicker) -> dict:
    entries = ledger.snapshot().values()
    calls = world.slack.call_log()
    statuses = Counter(c["status"] for c in calls if c["status"] != 200)
    alerts = world.rows('SELECT "grouping" AS g, count(*) AS n FROM alerts GROUP BY "grouping"')
    aws = world.aws.stats.snapshot()
    denied = sum(n for k, n in aws["errors"].items() if "AccessDenied" in k)
    return {
        "scenarios": dict(ledger.scenarios),
        "findings sent": len(entries),
        "findings by kind": dict(Counter(e.kind for e in entries)),
        "late findings": sum(e.late for e in entries),
        "findings sent more than once": sum(e.sent > 1 for e in entries),
        "findings only on the queue": sum(e.paths == {"queue"} for e in entries),
        "findings on both paths": sum(e.paths == {"queue", "cloudtrail"} for e in entries),
        "queue messages": driver.sent["queue messages"],
        "alerts by grouping": {r.g: r.n for r in alerts},
        "acks": len(clicker.acks),
        "clicks": dict(clicker.answers),
        "slack answers other than 200": {str(k): v for k, v in statuses.items()},
        "slack calls": len(calls),
        "lookups throttled": aws["throttled_total"],
        "AccessDenied answers": denied,
        "replica restarts": sum(len(r.pids) - 1 for r in world.replicas),
    }


def _as_json(outcome: Outcome) -> dict:
    return {
        "config": outcome.config.__dict__,
        "command": outcome.command,
        "ok": outcome.ok,
        "results": [r.__dict__ for r in outcome.results],
        "faults": [f.__dict__ for f in outcome.faults],
        "stats": outcome.stats,
        "seconds": outcome.seconds,
        "errors": outcome.errors,
        "ledger": outcome.ledger,
    }


# --- the report ----------------------------------------------------------------------------------


def intro() -> str:
    faults = "\n".join(f"- `{kind}`: {FAULT_NAMES[kind]}" for kind in FAULT_KINDS)
    checks = "\n".join(f"{n}. `{name}`: {text}" for n, (name, text) in enumerate(INVARIANTS.items(), 1))
    return f"""`bench/soak.py` runs two real `rootcheck serve` replicas (HTTP mode) on one fresh PostgreSQL database
for minutes under random faults drawn from a seed, then checks the delivery invariants against FakeSlack and
the database. The short form (75 s of faults) runs in CI as `tests/serve/test_soak.py` (marker `soak`).

Setup: `ROOTCHECK_SWEEP_INTERVAL=3s`; 4 accounts in 3 channels (one account has an owner who is asked "was this
you?", with `ROOTCHECK_CONFIRM_TIMEOUT=20s`; one has an active root access key in its credential report);
Regions us-east-1 and eu-west-1; the SQS queue path on (moto; both replicas consume); FakeSlack with Slack's
rate limits on all the time (`chat.postMessage` 1/s per channel, `chat.update` 50/min);
`ROOTCHECK_REMIND_AFTER=20s`. A driver adds a scenario every 2-6 s: a root sign-in with 1-5 console calls
(sometimes a high-risk call), a burst of failed sign-ins, root access key calls, a lone high-risk call with
temporary credentials; a quarter of them late (event time 10-45 min back, inside the lookups' 60-minute
overlap); a fifth of the records delivered a second time 3-30 s later; 60 % only in CloudTrail, 25 % in
CloudTrail and on the queue, 15 % only on the queue (once or twice). A clicker acknowledges about a third
of the posted alerts through either replica (signed clicks, clicked again every 6 s while the ack is not
stored, as a person would). Faults (every kind once 3-6 s apart, then at random 3-9 s apart):

{faults}

In the steady state a sweep calls only LookupEvents (credentials and credential reports are cached for
hours), so AccessDenied on IAM or AssumeRole bites only when it meets a replica that has just started. After a
replica or PostgreSQL fault the injector waits for /healthz 200 on both replicas before the next one.
Then every fault is switched off and the soak waits until nothing is pending: 3 sweeps after the last event,
the queue empty, no finding waiting, every alert posted and its message showing its latest version (summary
included), every reply and question sent, every ack stored. The invariants:

{checks}"""


def report(outcome: Outcome) -> str:
    counts = Counter(f.kind for f in outcome.faults if not f.skipped)
    targets: dict[str, Counter] = defaultdict(Counter)
    recovery: dict[str, list[float]] = defaultdict(list)
    for fault in outcome.faults:
        if not fault.skipped:
            targets[fault.kind][fault.target] += 1
        if fault.recovered_after is not None:
            recovery[fault.kind].append(fault.recovered_after)
    rows = []
    for kind in FAULT_KINDS:
        skipped = next((f.skipped for f in outcome.faults if f.kind == kind and f.skipped), None)
        where = ", ".join(f"{t} ×{n}" for t, n in sorted(targets[kind].items()))
        healthy = f"max {max(recovery[kind]):.1f} s" if recovery[kind] else "n/a"
        rows.append(
            f"| `{kind}` | {counts.get(kind, 0)}{f' (skipped: {skipped})' if skipped else ''} | "
            f"{where or '-'} | {healthy} |"
        )
    checks = "\n".join(
        f"| `{r.name}` | {'**pass**' if r.ok else '**FAIL**'} | {r.checked} | "
        f"{'; '.join(r.problems[:3]).replace('|', '/') or '-'} |"
        for r in outcome.results
    )
    s = outcome.stats

    def listed(counts: dict, sep: str = " ") -> str:
        return ", ".join(f"{k}{sep}{v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]))))

    alerts = s.get("alerts by grouping", {})
    clicks = s.get("clicks", {})
    refused = s.get("slack answers other than 200", {})
    load = "\n".join(
        [
            f"- findings sent: {s.get('findings sent', 0)} ({listed(s.get('findings by kind', {}))}); "
            f"{s.get('late findings', 0)} late, {s.get('findings sent more than once', 0)} delivered more than once, "
            f"{s.get('findings on both paths', 0)} on both paths, {s.get('findings only on the queue', 0)} only on "
            f"the queue ({s.get('queue messages', 0)} queue messages)",
            f"- alerts: {sum(alerts.values())} ({listed(alerts)}); {s.get('acks', 0)} acknowledged with "
            f"{sum(clicks.values())} clicks (answers: {listed(clicks, ' ×') or 'none'})",
            f"- Slack: {s.get('slack calls', 0)} calls; answers other than 200: {listed(refused, ' ×') or 'none'}",
            f"- AWS stand-in: {s.get('lookups throttled', 0)} lookups throttled, "
            f"{s.get('AccessDenied answers', 0)} AccessDenied answers",
            f"- replica restarts: {s.get('replica restarts', 0)}",
        ]
    )
    abandoned_claims = s.get("claims left by killed replicas when the faults stopped", "?")
    verdict = "**all invariants hold**" if outcome.ok else "**invariants FAILED** (see the table)"
    return f"""Command: `{outcome.command}`

{machine()}

{outcome.config.seconds:g} s of faults (seed {outcome.config.seed}), then {outcome.seconds.get("quiesce", "?")} s
until nothing was pending ({abandoned_claims} claim(s) held by killed replicas when the faults stopped: the
leader reconciles such a claim 5 minutes after it was made); {outcome.seconds.get("total", "?")} s in all.

{load}

| fault | injected | targets | /healthz 200 on both again |
|---|---|---|---|
{chr(10).join(rows)}

| invariant | result | checked | problems |
|---|---|---|---|
{checks}

Result: {verdict}.{"".join(f" Skipped: {x}." for x in outcome.skipped)}"""


def write_report(outcome: Outcome, path: Path = DOC) -> None:
    """Rewrite this form's part of the soak section, keeping the other form's part and any
    hand-written subsection (the bugs the soak found) after them."""
    heading = {"long": "### Long run", "short": "### Short form (CI)"}
    parts: dict[str, str] = {}
    notes: list[str] = []
    if path.exists():
        match = re.search(rf"^## {re.escape(SECTION)}\n.*?(?=^## |\Z)", path.read_text(), re.M | re.S)
        for sub in re.split(r"^(?=### )", match.group(0) if match else "", flags=re.M)[1:]:
            title, _, rest = sub.partition("\n")
            form = next((f for f, t in heading.items() if t == title.strip()), None)
            if form:
                parts[form] = rest.strip()
            else:
                notes.append(sub.strip())
    parts[outcome.config.form] = report(outcome)
    body = intro() + "".join(f"\n\n{heading[form]}\n\n{parts[form]}" for form in heading if form in parts)
    write_section(SECTION, body + "".join(f"\n\n{note}" for note in notes), path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of faults (default 10)")
    parser.add_argument("--seed", type=int, default=12, help="the faults and events drawn (default 12)")
    parser.add_argument("--short", action="store_true", help="the CI form: 75 s of faults")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--keep", type=Path, help="keep the logs and the result here (default: a temp dir)")
    parser.add_argument("--keep-database", action="store_true", help="do not drop the soak's database")
    args = parser.parse_args(argv)
    server = os.environ.get(POSTGRES_URL)
    if not server:
        print(f"soak: set {POSTGRES_URL} to a PostgreSQL server (.ci/run starts one)", file=sys.stderr)
        return 2
    ctl = postgres_ctl()
    if ctl is None:
        print(f"soak: {POSTGRES_CTL} is not set: the PostgreSQL-restart fault is skipped", file=sys.stderr)
    config = Config.short(args.seed) if args.short else Config(seconds=args.minutes * 60, seed=args.seed)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="rootcheck-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    command = (
        ".venv/bin/python bench/soak.py "
        + ("--short" if args.short else f"--minutes {args.minutes:g}")
        + f" --seed {args.seed}"
    )
    outcome = run(
        config,
        server,
        workdir,
        ctl,
        command,
        progress=lambda line: print(f"soak: {line}", file=sys.stderr, flush=True),
        keep_database=args.keep_database,
    )
    print(outcome.summary())
    if not args.no_write and outcome.results:
        write_report(outcome)
        print(f"soak: wrote '{SECTION}' in {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
