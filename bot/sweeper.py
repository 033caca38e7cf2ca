"""Wiring for live sweeps: settings → sessions, the account list, the collector, `service.sweep`.

Shared by `rootcheck scan` (one sweep) and `rootcheck serve` (the scheduler), so both check
exactly the same accounts the same way.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable

from bot import service
from bot.accounts import AccountsFileError, merge_accounts, parse_accounts_file
from bot.aws.collect import Collector
from bot.aws.errors import check_credentials
from bot.aws.organizations import discover_accounts
from bot.aws.sessions import AwsSessions
from bot.config import ConfigError, Settings
from bot.models import Account, Evidence, Finding, SweepResult, Window
from bot.timeutil import utcnow


class Sweeper:
    """Long-lived: sessions, credentials and aliases are reused by every sweep."""

    def __init__(self, settings: Settings, **collector_options):
        self.settings = settings
        external_id = settings.external_id.get_secret_value() if settings.external_id else None
        self.sessions = AwsSessions(settings.role_name, external_id)
        self.collector = Collector(self.sessions, settings.regions, settings.concurrency, **collector_options)

    def accounts(self) -> list[Account]:
        """The configured accounts; with none configured, the account of the current credentials."""
        check_credentials(self.sessions)
        sources = []
        if self.settings.accounts_file:
            sources.append(_read_accounts_file(self.settings.accounts_file))
        if self.settings.org_discovery:
            sources.append(discover_accounts(self.sessions))
        sources.append(Account(id=i) for i in self.settings.accounts)
        accounts = merge_accounts(*sources)
        return accounts or [Account(id=self.sessions.identity()["Account"])]

    def sweep(self, accounts: list[Account], start: Callable[[Account], datetime], end: datetime | None = None,
              report_since: Callable[[Account], datetime | None] = lambda account: None,
              reports: bool | Callable[[Account], bool] = True,
              on_done: Callable[[Evidence, list[Finding]], None] | None = None,
              mfa_since: Callable[[Account], str | None] = lambda account: None) -> SweepResult:
        until = end or utcnow()
        return service.sweep(self.collector, accounts, lambda a: Window(start(a), until), report_since,
                             reports, on_done, mfa_since)


def _read_accounts_file(path: str) -> list[Account]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"ROOTCHECK_ACCOUNTS_FILE: cannot read {path} ({exc.strerror})") from None
    try:
        return parse_accounts_file(text)
    except AccountsFileError as exc:
        raise ConfigError(str(exc)) from None

