"""Helpers for running the real `rootcheck serve` against FakeSlack and the AWS stand-in.

Each test gets a fresh channel, fresh account ids and its own database; `launch` starts serve
processes (logs under tmp_path, printed when a test fails) and kills whatever is left at the end.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.checks.cloudtrail import check_record
from tests.conftest import new_account_id
from tests.fakes.aws_standin import root_login_record
from tests.harness import Serve, free_port, serve_env, wait_for
from tests.store.conftest import new_postgres_database, postgres_server  # noqa: F401 - fixtures for serve tests

INTERVAL = 2.0  # ROOTCHECK_SWEEP_INTERVAL of most tests, seconds
_channels = itertools.count(1)


@pytest.fixture
def channel(fake_slack) -> str:
    """A fresh alert channel the bot is in, with an admin and a member."""
    name = f"C0SRV{os.getpid() % 1000:03d}{next(_channels):04d}"
    fake_slack.add_channel(name, members=["U0ADMIN", "U0MEMBER"])
    return name


@pytest.fixture
def sqlite_db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'rootcheck.db'}"


class Launcher:
    """Start `rootcheck serve` processes; each keeps its log in tmp_path."""

    def __init__(self, fake_slack, standin, tmp_path: Path):
        self.fake_slack, self.standin, self.tmp_path = fake_slack, standin, tmp_path
        self.started: list[Serve] = []

    def env(self, db_url: str, channel: str, accounts: list[str], aws_env: dict | None = None, **extra: str) -> dict:
        extra.setdefault("ROOTCHECK_SWEEP_INTERVAL", f"{INTERVAL:g}s")
        if accounts:
            extra.setdefault("ROOTCHECK_ACCOUNTS", ",".join(accounts))
        return serve_env(
            self.fake_slack,
            self.standin.env() if aws_env is None else aws_env,
            db_url,
            ROOTCHECK_CHANNEL=channel,
            **extra,
        )

    def start(self, env: dict, wait: bool = True, new_port: bool = True) -> Serve:
        env = dict(env, PORT=str(free_port())) if new_port else env
        serve = Serve(env, log_path=self.tmp_path / f"serve-{len(self.started) + 1}.log")
        self.started.append(serve)
        return serve.start(wait=wait)

    def close(self) -> None:
        for serve in self.started:
            if serve.process is not None and serve.process.poll() is None:
                serve.kill()


@pytest.fixture
def launch(fake_slack, standin, tmp_path, request) -> Iterator[Launcher]:
    launcher = Launcher(fake_slack, standin, tmp_path)
    yield launcher
    launcher.close()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for log in sorted(tmp_path.glob("serve-*.log")):
            print(f"----- {log.name} (last 60 lines)")
            print("\n".join(log.read_text(errors="replace").splitlines()[-60:]))


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


# --- AWS side ---------------------------------------------------------------------------------


def new_accounts(standin, n: int = 1, **settings) -> list[str]:
    """Fresh member accounts; their credential report is ready at once unless asked otherwise."""
    settings.setdefault("report_state", "complete")
    accounts = [new_account_id() for _ in range(n)]
    for account in accounts:
        standin.add_account(account, **settings)
    return accounts


def root_logins(standin, account: str, n: int = 1, **kwargs) -> list[str]:
    """Root console sign-ins happening now; returns the finding ids rootcheck must post."""
    records = [root_login_record(account, datetime.now(UTC), **kwargs) for _ in range(n)]
    standin.add_events(account, "us-east-1", records)
    return [check_record(record, account).id for record in records]


# --- Slack side -------------------------------------------------------------------------------


def alerts(fake_slack, channel: str) -> Counter:
    """How many top-level alert messages each alert id has in the channel."""
    return Counter(
        m["metadata"]["event_payload"]["finding_id"]
        for m in fake_slack.messages(channel)
        if (m.get("metadata") or {}).get("event_type") == "rootcheck_finding"
    )


def alert(fake_slack, channel: str, finding_id: str) -> dict | None:
    for m in fake_slack.messages(channel):
        if ((m.get("metadata") or {}).get("event_payload") or {}).get("finding_id") == finding_id:
            return m
    return None


def wait_posted_once(fake_slack, channel: str, ids: list[str], timeout: float = 30.0) -> Counter:
    """Every id has its alert; none has two."""
    wait_for(lambda: set(ids) <= set(alerts(fake_slack, channel)), timeout=timeout)
    posted = alerts(fake_slack, channel)
    assert {i: n for i, n in posted.items() if n > 1} == {}, "a finding was posted twice"
    return posted


def post_attempts(fake_slack, channel: str) -> list[dict]:
    """chat.postMessage calls for the channel's alerts (failed ones too), oldest first."""
    out = []
    for call in fake_slack.call_log("chat.postMessage"):
        params = call["params"]
        if params.get("channel") != channel or params.get("thread_ts"):
            continue
        metadata = params.get("metadata")
        metadata = json.loads(metadata) if isinstance(metadata, str) else (metadata or {})
        out.append(
            {
                "finding_id": (metadata.get("event_payload") or {}).get("finding_id"),
                "time": call["time"],
                "status": call["status"],
                "error": call["error"],
            }
        )
    return out


# --- the store, read from outside -------------------------------------------------------------


@dataclass(frozen=True)
class Sweep:
    id: int
    holder: str
    started_at: datetime  # naive UTC, as stored
    finished_at: datetime | None


def _naive(value) -> datetime | None:
    """SQLite hands plain SQL its times as text; PostgreSQL as datetimes."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


class Db:
    """Read the serve process's database the way an operator would (plain SQL)."""

    def __init__(self, url: str):
        self.url = url
        self.engine = create_engine(url, pool_pre_ping=True)

    def rows(self, sql: str, **params) -> list:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).all()

    def states(self, ids: list[str] | None = None) -> dict[str, str]:
        """Each alert's delivery state (pending, posting, posted, failed) by alert id."""
        return {r.id: r.state for r in self.rows("SELECT id, state FROM alerts") if ids is None or r.id in ids}

    def held(self) -> list[str]:
        """Findings waiting for their sweep's digest decision."""
        return [r.id for r in self.rows("SELECT id FROM findings WHERE held")]

    def sweeps(self) -> list[Sweep]:
        return [
            Sweep(r.id, r.holder, _naive(r.started_at), _naive(r.finished_at))
            for r in self.rows("SELECT id, holder, started_at, finished_at FROM sweeps ORDER BY started_at, id")
        ]

    def finished_sweeps(self) -> int:
        return len([s for s in self.sweeps() if s.finished_at is not None])

    def wait_sweeps(self, more: int, timeout: float = 30.0) -> None:
        """Block until `more` further sweeps have finished."""
        target = self.finished_sweeps() + more
        wait_for(lambda: self.finished_sweeps() >= target, timeout=timeout, interval=0.1)

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def db_reader() -> Iterator[Callable[[str], Db]]:
    opened: list[Db] = []

    def open_db(url: str) -> Db:
        opened.append(Db(url))
        return opened[-1]

    yield open_db
    for db in opened:
        db.close()


def utc(value: datetime) -> float:
    """A naive-UTC time read from the store, as epoch seconds."""
    return value.replace(tzinfo=UTC).timestamp()


def holder_pid(holder: str) -> int:
    return int(holder.rsplit(":", 1)[1])
