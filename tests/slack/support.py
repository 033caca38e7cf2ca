"""The real `rootcheck serve` process with helpers to add accounts, root logins and channels.

Each test adds its own accounts (fresh ids) and, where state could collide, its own alert
channel: the accounts file (`ROOTCHECK_ACCOUNTS_FILE`) is re-read at every sweep, so accounts and
channels can be added while the process runs.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from tests.conftest import new_account_id
from tests.fakes.aws_standin import root_login_record
from tests.harness import Serve, serve_env, sign, wait_for

ADMIN = "U0ADMIN"  # a member of every channel these tests create
MEMBER = "U0MEMBER"
OUTSIDER = "U0OUTSIDER"  # in no channel


def new_channel() -> str:
    return "C" + uuid.uuid4().hex[:10].upper()


class Served:
    """One running `rootcheck serve` and the fakes it talks to."""

    def __init__(self, serve: Serve, fake, standin, accounts_file: Path, db_url: str):
        self.serve = serve
        self.fake = fake
        self.standin = standin
        self.accounts_file = accounts_file
        self.db_url = db_url
        self._accounts: list[dict] = []
        self.pool: dict[str, tuple[str, str]] = {}  # name -> (account, channel), set up before start

    # setup ----------------------------------------------------------------------------------
    def add_account(
        self, channel: str | None = None, alias: str | None = None, members: tuple[str, ...] = (ADMIN, MEMBER)
    ) -> tuple[str, str]:
        """A fresh account watched by the running bot, alerting into `channel` (a fresh one by default)."""
        account = new_account_id()
        channel = channel or new_channel()
        if channel not in self.fake.state()["channels"]:
            self.fake.add_channel(channel, members=list(members))
        self.standin.add_account(account, alias=alias)
        self._accounts.append({"id": account, "channel": channel})
        temporary = self.accounts_file.with_suffix(".tmp")
        temporary.write_text(yaml.safe_dump(self._accounts))
        os.replace(temporary, self.accounts_file)  # the bot never reads half a file
        return account, channel

    def seed(
        self,
        name: str,
        channel: str | None = None,
        alias: str | None = None,
        members: tuple[str, ...] = (ADMIN, MEMBER),
    ) -> tuple[str, str]:
        """A named account with one root console login (in its own channel unless given)."""
        account, channel = self.add_account(channel, alias, members)
        self.root_login(account)
        self.pool[name] = (account, channel)
        return account, channel

    def seeded_alert(self, name: str, timeout: float = 20.0) -> tuple[str, str, dict]:
        """(account, channel, message) of a seeded account's alert, once posted."""
        account, channel = self.pool[name]
        alert = wait_for(
            lambda: next(
                (a for a in self.alerts(channel) if a["metadata"]["event_payload"]["account_id"] == account), None
            ),
            timeout=timeout,
        )
        return account, channel, alert

    def scan_now(self, account: str | None = None, user: str = ADMIN, timeout: float = 20.0) -> str:
        """`/rootcheck scan [ACCOUNT]`: a sweep now, without waiting for the interval; the summary."""
        _, _, _, url = self.command(f"scan {account or ''}".strip(), user)
        assert "Scan started" in self.answers(url)[0]["text"], self.fake.responses(url)
        answers = self.answers(url, 2, timeout=timeout)
        assert "Scan finished" in answers[1]["text"], answers
        return answers[1]["text"]

    def root_login(self, account: str, when: float | None = None, **changes) -> dict:
        record = root_login_record(account, when)
        record.update(changes)
        self.standin.add_events(account, "us-east-1", [record])
        return record

    # observing ------------------------------------------------------------------------------
    def alerts(self, channel: str) -> list[dict]:
        return [
            m for m in self.fake.messages(channel) if (m.get("metadata") or {}).get("event_type") == "rootcheck_finding"
        ]

    def wait_alerts(self, channel: str, count: int, timeout: float = 20.0) -> list[dict]:
        return wait_for(
            lambda: (lambda found: found if len(found) >= count else None)(self.alerts(channel)), timeout=timeout
        )

    def message(self, channel: str, ts: str) -> dict:
        return self.fake.message(channel, ts)

    def metric(self, name: str) -> float:
        status, body = self.serve.get("/metrics")
        assert status == 200
        match = re.search(rf"^{re.escape(name)} (\S+)$", body.decode(), re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    # acting ---------------------------------------------------------------------------------
    def command(self, text: str, user: str = ADMIN, channel: str | None = None, **kwargs):
        """A signed `/rootcheck` POST; returns (status, body, seconds, response_url)."""
        url = self.fake.new_response_url()
        status, body, seconds = self.serve.command(
            text, user, url, **({"channel": channel} if channel else {}), **kwargs
        )
        return status, body, seconds, url

    def answers(self, url: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        return self.fake.wait_for_responses(url, count, timeout=timeout)

    def click(
        self,
        alert: dict,
        channel: str,
        user: str = ADMIN,
        action_id: str = "rootcheck_ack",
        response_url: str | None = None,
        headers: dict | None = None,
    ):
        """A signed block_actions POST for `alert`'s button; returns (status, body, seconds)."""
        value = alert["metadata"]["event_payload"]["finding_id"]
        if response_url is None and headers is None:
            return self.serve.click(value, alert["ts"], user, action_id=action_id, channel=channel)
        payload = {
            "type": "block_actions",
            "user": {"id": user},
            "team": {"id": "T0TEST"},
            "channel": {"id": channel},
            "container": {"type": "message", "message_ts": alert["ts"], "channel_id": channel},
            "message": {"ts": alert["ts"]},
            "trigger_id": "1.2.3",
            "response_url": response_url or "http://127.0.0.1:9/unused",
            "actions": [{"action_id": action_id, "value": value, "type": "button", "block_id": "b"}],
        }
        from urllib.parse import urlencode  # noqa: PLC0415

        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.serve.post(body, headers or sign(body))

    def store(self):
        """The bot's own store, read from the test (the ack is stored with who and when)."""
        from bot.store import Store  # noqa: PLC0415

        return Store(self.db_url)


@contextmanager
def served(
    fake,
    standin,
    tmp_path: Path,
    name: str = "serve",
    interval: str = "10m",
    before_start: Callable[[Served], None] | None = None,
    **extra: str | None,
) -> Iterator[Served]:
    """Start `rootcheck serve`; `before_start` adds the accounts the first sweep (at start) must see.

    Later sweeps are best asked for with `/rootcheck scan`, which sweeps at once, so the interval
    can stay long and the tests do not wait for it.
    """
    accounts_file = tmp_path / f"{name}-accounts.yml"
    accounts_file.write_text("[]\n")
    db_url = f"sqlite:///{tmp_path / (name + '.db')}"
    env = serve_env(
        fake,
        standin.env(),
        db_url,
        ROOTCHECK_ACCOUNTS_FILE=str(accounts_file),
        ROOTCHECK_SWEEP_INTERVAL=interval,
        **extra,
    )
    env = {k: v for k, v in env.items() if v is not None}
    serve = Serve(env, log_path=tmp_path / f"{name}.log")
    running = Served(serve, fake, standin, accounts_file, db_url)
    if before_start is not None:
        before_start(running)
    serve.start()
    try:
        yield running
    finally:
        assert serve.stop() == 0, "rootcheck serve did not stop cleanly on SIGTERM"


def stays(predicate, seconds: float = 0.5, interval: float = 0.05) -> bool:
    """True when `predicate` holds for the whole time (a thing that must NOT happen did not)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(interval)
    return bool(predicate())
