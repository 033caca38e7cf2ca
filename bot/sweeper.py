"""Wiring for live sweeps: settings → sessions, the account list, the collector, `service.sweep`.

Shared by `rootcheck scan` (one sweep) and `rootcheck serve` (the scheduler), so both check
exactly the same accounts the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from bot import service
from bot.accounts import AccountsFileError, merge_accounts, parse_accounts_file
from bot.aws.collect import Collector
from bot.aws.errors import check_credentials
from bot.aws.organizations import discover_accounts
from bot.aws.sessions import AwsSessions
from bot.config import ConfigError, Settings
from bot.models import Account, Evidence, Finding, SweepResult, Window


class Sweeper:
    """Long-lived: clients, credentials and aliases are reused by every sweep."""

    def __init__(self, settings: Settings, **collector_options):
        self.settings = settings
        external_id = settings.external_id.get_secret_value() if settings.external_id else None
        self.sessions = AwsSessions(settings.role_name, external_id, max_pool_connections=settings.concurrency)
        self.collector = Collector(self.sessions, settings.regions, settings.concurrency, **collector_options)

    def discover(self, owner_tag: str | None = None) -> list[Account]:
        """The Organization's ACTIVE accounts (with owners from `owner_tag`), or none without
        ROOTCHECK_ORG_DISCOVERY. A call per account with owners: refresh it hourly, not every sweep."""
        check_credentials(self.sessions)
        return discover_accounts(self.sessions, owner_tag) if self.settings.org_discovery else []

    def accounts(self, discovered: list[Account]) -> list[Account]:
        """The configured accounts merged with `discovered` ones; with none, the current credentials' account."""
        check_credentials(self.sessions)
        sources: list[Iterable[Account]] = []
        if self.settings.accounts_file:
            sources.append(_read_accounts_file(self.settings.accounts_file))
        sources.append(discovered)
        sources.append(Account(id=i) for i in self.settings.accounts)
        accounts = merge_accounts(*sources)
        return accounts or [Account(id=self.sessions.identity()["Account"])]

    def sweep(
        self,
        accounts: list[Account],
        window: Callable[[Account, str], Window],
        report_due: Callable[[Account], bool],
        report_since: Callable[[Account], datetime | None],
        mfa_since: Callable[[Account], str | None],
        on_part: Callable[[Evidence, list[Finding]], None],
    ) -> SweepResult:
        return service.sweep(self.collector, accounts, window, report_due, report_since, mfa_since, on_part)


def _read_accounts_file(path: str) -> list[Account]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"ROOTCHECK_ACCOUNTS_FILE: cannot read {path} ({exc.strerror})") from None
    try:
        return parse_accounts_file(text)
    except AccountsFileError as exc:
        raise ConfigError(str(exc)) from None
