"""Terminal output of `rootcheck scan`: JSON lines or a rich table on stdout, the rest on stderr.

Nothing but findings ever goes to stdout, so `--format json` pipes cleanly. Every value that
came from AWS is printed as plain text (never as rich markup).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import IO

from bot.checks.grouping import group
from bot.checks.story import span, story, title
from bot.models import Alert, Finding, rank

SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "dim"}


def write_json_line(finding: Finding, stream: IO[str] = sys.stdout) -> None:
    stream.write(json.dumps(finding.to_dict(), ensure_ascii=False) + "\n")
    stream.flush()


def print_table(findings: Iterable[Finding], stream: IO[str] = sys.stdout) -> None:
    """The alerts the bot would post for these findings: grouped, most severe first, with counts."""
    from rich.console import Console  # noqa: PLC0415 - rich costs start-up; only tables need it
    from rich.table import Table
    from rich.text import Text

    findings = list(findings)
    by_id = {finding.id: finding for finding in findings}
    alerts = sorted(group(findings, []).alerts.values(), key=lambda a: (rank(a.severity()), a.opened_at or "", a.id))
    table = Table(title=f"rootcheck: {len(alerts)} alert(s) from {len(findings)} finding(s)", show_lines=True)
    for column in ("Severity", "Alert", "Kind", "Account", "When (UTC)", "Count", "What happened"):
        table.add_column(column, overflow="fold")
    for alert in alerts:
        opener = by_id[alert.id]
        severity = alert.severity()
        table.add_row(
            Text(severity.upper(), style=SEVERITY_STYLE.get(severity, "")),
            *(
                Text(value)
                for value in (
                    title(alert, opener),
                    alert.kind,
                    alert.account_id or "-",
                    span(alert.summary.first, alert.summary.last),
                    str(alert.summary.count),
                    _details(alert, opener),
                )
            ),
        )
    console = Console(file=stream, width=None if stream.isatty() else 200)
    console.print(table if alerts else "No findings.")


def _details(alert: Alert, opener: Finding) -> str:
    lines = [f"{label}: {text}" for label, text in story(alert)]
    if opener.source == "cloudtrail":
        lines.insert(
            0,
            f"From {opener.source_ip or '-'} · {opener.user_agent or '-'} · {opener.region or '-'}"
            f" · MFA {_mfa(opener.mfa_used)}",
        )
    if alert.summary.count == 1:
        lines.append(opener.detail)
    return "\n".join(lines)


def print_lines(lines: Iterable[str], stream: IO[str] = sys.stderr) -> None:
    for line in lines:
        stream.write(line + "\n")
    stream.flush()


def _mfa(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")
