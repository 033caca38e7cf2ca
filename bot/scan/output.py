"""Terminal output of `rootcheck scan`: JSON lines or a rich table on stdout, the rest on stderr.

Nothing but findings ever goes to stdout, so `--format json` pipes cleanly. Every value that
came from AWS is printed as plain text (never as rich markup).
"""

from __future__ import annotations

import json
import sys
from typing import IO, Iterable

from bot.models import Finding

SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "dim"}


def write_json_line(finding: Finding, stream: IO[str] = sys.stdout) -> None:
    stream.write(json.dumps(finding.to_dict(), ensure_ascii=False) + "\n")
    stream.flush()


def print_table(findings: Iterable[Finding], stream: IO[str] = sys.stdout) -> None:
    from rich.console import Console  # noqa: PLC0415 - rich costs start-up; only tables need it
    from rich.table import Table
    from rich.text import Text

    table = Table(title="rootcheck findings", show_lines=False)
    for column in ("Severity", "Kind", "Account", "Time (UTC)", "Region", "Source IP", "MFA", "User agent",
                   "Detail"):
        table.add_column(column, overflow="fold")
    rows = sorted(findings, key=lambda f: (_SEVERITY_ORDER.get(f.severity, 9), f.event_time or ""))
    for f in rows:
        table.add_row(Text(f.severity.upper(), style=SEVERITY_STYLE.get(f.severity, "")),
                      *(Text(value) for value in (
                          f.kind, f.account_id or "-", f.event_time or "-", f.region or "-",
                          f.source_ip or "-", _mfa(f.mfa_used), f.user_agent or "-", f.detail)))
    console = Console(file=stream, width=None if stream.isatty() else 180)
    if rows:
        console.print(table)
    else:
        console.print("No findings.")


def print_lines(lines: Iterable[str], stream: IO[str] = sys.stderr) -> None:
    for line in lines:
        stream.write(line + "\n")
    stream.flush()


_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def _mfa(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")
