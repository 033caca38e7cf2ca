"""`rootcheck doctor`: configuration and connectivity, with a fix for everything that is wrong.

Exit 0 only when every check passes; 1 when something needs fixing; 2 when the configuration
itself cannot be read.
"""

from __future__ import annotations

import sys

from bot.config import Settings
from bot.models import Check


def run(settings: Settings) -> int:
    from bot.aws.probe import probe_accounts, probe_identity, regions_note  # noqa: PLC0415
    from bot.slack.probe import probe_slack  # noqa: PLC0415
    from bot.sweeper import Sweeper  # noqa: PLC0415

    secret = lambda value: value.get_secret_value() if value is not None else None  # noqa: E731
    sweeper = Sweeper(settings)
    checks = probe_identity(sweeper.sessions, settings.org_discovery) + regions_note(settings.regions)
    accounts = []
    if checks[0].ok:
        try:
            accounts = sweeper.accounts(sweeper.discover(settings.owner_tag))
        except Exception as exc:  # noqa: BLE001 - a bad accounts file or denied discovery is a check result
            checks.append(Check("aws", "accounts", False, str(exc), "fix the account configuration"))
        checks += probe_accounts(sweeper.sessions, accounts, settings.all_regions, settings.concurrency)
    channels = list(dict.fromkeys([c for c in [settings.channel, *(a.channel for a in accounts)] if c]))
    checks += probe_slack(
        secret(settings.slack_bot_token),
        secret(settings.slack_app_token),
        settings.slack_signing_secret is not None,
        settings.slack_api_url,
        channels,
        accounts,
    )
    if not settings.channel:
        checks.append(Check("slack", "ROOTCHECK_CHANNEL", False, "not set", "set the alert channel's ID (C…)"))
    print_checks(checks)
    return 0 if all(check.ok for check in checks) else 1


def print_checks(checks: list[Check]) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table
    from rich.text import Text

    table = Table(title="rootcheck doctor")
    for column in ("", "Area", "Checked", "Result", "How to fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        table.add_row(
            Text("ok" if check.ok else "FAIL", style="green" if check.ok else "bold red"),
            Text(check.area),
            Text(check.subject),
            Text(check.detail),
            Text(check.fix),
        )
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)
    console.print(table)
    failed = sum(not check.ok for check in checks)
    console.print(f"{failed} problem(s) found." if failed else "All checks passed.", markup=False)
