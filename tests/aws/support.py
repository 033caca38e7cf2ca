"""Helpers for the live-sweep tests: one sweep through `Sweeper`, keeping every part handed over."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from bot.models import Account, Evidence, Finding, SweepResult, Window
from bot.sweeper import Sweeper


def sweep(
    sweeper: Sweeper,
    accounts: list[Account],
    start: datetime | Callable[[Account], datetime],
    report_due: Callable[[Account], bool] = lambda account: True,
    parts: list[tuple[Evidence, list[Finding]]] | None = None,
) -> SweepResult:
    """All accounts from `start` (a time, or one per account) to now; `parts` collects what was handed over."""
    end = datetime.now(UTC)
    begin = start if callable(start) else (lambda account: start)
    return sweeper.sweep(
        accounts,
        lambda account, region: Window(begin(account), end),
        report_due,
        lambda account: None,
        lambda account: None,
        lambda evidence, found: parts is not None and parts.append((evidence, found)),
    )
