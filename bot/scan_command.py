"""The two faces of `rootcheck scan`: offline over files, and a live sweep over AWS accounts.

Findings stream to stdout as they are found (JSON) or as one table at the end; warnings,
progress and the summary go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from datetime import datetime
from typing import Callable, Iterator

from bot.cli import EXIT_ERROR, UsageError, exit_status
from bot.console import print_lines, print_table, write_json_line
from bot.models import Finding
from bot.offline import DocumentResult, OfflineScan, Summary, Window


def run_offline(args: argparse.Namespace, since: datetime | None, until: datetime | None,
                accounts: frozenset[str], output: str) -> int:
    window = Window(since=since, until=until, accounts=accounts)
    with _progress() as (warn, advance):
        scan = OfflineScan(window, warn=warn, progress=advance, workers=args.workers)
        findings = _emit(scan.run(args.events, args.credential_report), output)
    if output == "table":
        print_table(findings)
    print_lines(summary_lines(scan.summary))
    return exit_status(bool(scan.summary.errors), False, bool(findings))


def run_live(args: argparse.Namespace, since: datetime | None, until: datetime | None,
             accounts: frozenset[str], output: str) -> int:
    from bot.config import ConfigError, load_settings  # noqa: PLC0415
    from bot.live import live_sweep  # noqa: PLC0415 - boto3 only when AWS is really called

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    with _progress() as (warn, advance):
        result = live_sweep(settings, since=since, until=until, only=accounts, warn=warn)
        if result is None:
            return EXIT_ERROR
        findings = _emit(iter(result.findings), output)
    if output == "table":
        print_table(findings)
    print_lines(f"error: {error.line()}" for error in result.errors)
    print_lines([f"rootcheck: checked {len(result.checked)} account(s), {len(result.errors)} error(s), "
                 f"{len(findings)} finding(s)"])
    return exit_status(False, bool(result.errors), bool(findings))


def summary_lines(summary: Summary) -> list[str]:
    lines = [f"rootcheck: read {summary.documents} file(s), {summary.records} record(s)"
             + (f", skipped {summary.skipped} record(s)" if summary.skipped else "")
             + (f", {len(summary.errors)} input error(s)" if summary.errors else "")]
    if summary.first_time:
        lines.append(f"  time span: {summary.first_time} to {summary.last_time}")
    if summary.by_kind:
        lines.append("  findings by kind: " + ", ".join(f"{k} {n}" for k, n in summary.by_kind.most_common()))
        lines.append("  findings by account: " + ", ".join(f"{k} {n}" for k, n in summary.by_account.most_common()))
    else:
        lines.append("  no findings")
    return lines


def _emit(findings: Iterator[Finding], output: str) -> list[Finding]:
    kept = []
    for finding in findings:
        kept.append(finding)
        if output == "json":
            write_json_line(finding)
    return kept


@contextmanager
def _progress() -> Iterator[tuple[Callable[[str], None], Callable[[DocumentResult], None] | None]]:
    """On a terminal: a rich progress bar on stderr, with warnings printed above it."""
    if not sys.stderr.isatty():
        yield (lambda line: print_lines([line]), None)
        return
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("scanning", total=None)
        totals = {"files": 0, "records": 0}

        def advance(result: DocumentResult) -> None:
            totals["files"] += 1
            totals["records"] += result.records
            bar.update(task, description=f"{totals['files']} files, {totals['records']} records")

        yield (lambda line: console.print(line, markup=False, highlight=False), advance)
