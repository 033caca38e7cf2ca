"""The faces of `rootcheck scan`: offline over files or Athena query results, and a live sweep.

Findings stream to stdout as they are found (JSON) or as one table at the end; warnings,
progress and the summary go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from bot.exits import UsageError, exit_status
from bot.models import Evidence, Finding
from bot.models import Window as SweepWindow
from bot.scan.athena import TableRef
from bot.scan.offline import OfflineScan, Summary, Window
from bot.scan.output import print_lines, print_table, write_json_line
from bot.timeutil import utcnow

Advance = Callable[[int], None]


def run_offline(
    args: argparse.Namespace, since: datetime | None, until: datetime | None, accounts: frozenset[str], output: str
) -> int:
    window = Window(since=since, until=until, accounts=accounts)
    with _progress("files") as (warn, advance):
        scan = OfflineScan(window, warn=warn, progress=lambda result: advance(result.records), workers=args.workers)
        findings = _emit(scan.run(args.events, args.credential_report), output)
    return _report(findings, output, summary_lines(scan.summary), scan.summary)


def run_athena(
    args: argparse.Namespace,
    ref: TableRef,
    since: datetime | None,
    until: datetime | None,
    accounts: tuple[str, ...],
    output: str,
) -> int:
    """`--athena`: read the table's layout, plan the queries, and report their rows as a file scan."""
    from bot.aws.athena import Athena, AthenaError  # noqa: PLC0415 - boto3 only when AWS is really called
    from bot.scan.athena import layout, plan  # noqa: PLC0415
    from bot.scan.athena_scan import AthenaScan  # noqa: PLC0415

    try:
        engine = Athena(ref.workgroup)
        table = layout(engine.table(ref.database, ref.table))
        queries = plan(ref, table, since, until, accounts, utcnow().date())
    except (AthenaError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if table.date_key is None:
        print_lines(
            [
                f"warning: table {ref} has no projected date partition: each query reads the whole table "
                f"(--max-scan-gb {args.max_scan_gb:g} still applies)"
            ]
        )
    window = Window(since=since, until=until, accounts=frozenset(accounts))
    with _progress("queries", total=len(queries)) as (warn, advance):
        scan = AthenaScan(
            engine, ref.database, queries, window, warn, progress=advance, max_bytes=int(args.max_scan_gb * 10**9)
        )
        findings = _emit(scan.run_queries(), output)
    return _report(findings, output, [scan.cost_line(), *summary_lines(scan.summary)], scan.summary)


def _report(findings: list[Finding], output: str, lines: list[str], summary: Summary) -> int:
    """The end of an offline scan (files or Athena): the table, the summary, the exit status."""
    if output == "table":
        print_table(findings)
    print_lines(lines)
    return exit_status(bool(summary.errors), False, bool(findings))


def run_live(
    args: argparse.Namespace, since: datetime | None, until: datetime | None, only: frozenset[str], output: str
) -> int:
    from bot.aws.errors import AwsSetupError  # noqa: PLC0415 - boto3 only when AWS is really called
    from bot.config import ConfigError, load_settings  # noqa: PLC0415
    from bot.sweeper import Sweeper  # noqa: PLC0415

    try:
        settings = load_settings()
        sweeper = Sweeper(settings)
        accounts = sweeper.accounts(sweeper.discover())  # owners play no part in a scan: no tag calls
    except (ConfigError, AwsSetupError) as exc:
        raise UsageError(str(exc)) from None
    missing = sorted(only - {a.id for a in accounts})
    if missing:
        raise UsageError(f"--account {', '.join(missing)}: not among the configured accounts")
    accounts = [a for a in accounts if not only or a.id in only]
    start = since or utcnow() - settings.lookback
    window = SweepWindow(start, until or utcnow())
    with _progress("accounts", total=len(accounts)) as (warn, advance):

        def on_part(evidence: Evidence, found: list[Finding]) -> None:
            if evidence.part == "done":  # an account's last part
                advance(1)

        result = sweeper.sweep(
            accounts,
            lambda account, region: window,
            lambda account: True,
            lambda account: start,
            lambda account: None,
            on_part,
        )
        findings = _emit(iter(result.findings), output)
    if output == "table":
        print_table(findings)
    print_lines(f"error: {error.line()}" for error in result.errors)
    print_lines(
        [
            f"rootcheck: checked {len(result.checked)} of {len(accounts)} account(s), "
            f"{len({e.account_id for e in result.errors})} with errors, {len(findings)} finding(s)"
        ]
    )
    return exit_status(False, bool(result.errors), bool(findings))


def summary_lines(summary: Summary) -> list[str]:
    lines = [
        f"rootcheck: read {summary.documents} file(s), {summary.records} record(s)"
        + (f", skipped {summary.skipped} record(s)" if summary.skipped else "")
        + (f", {len(summary.errors)} input error(s)" if summary.errors else "")
    ]
    for error in summary.errors[:10]:
        lines.append(f"  not read: {error}")
    if len(summary.errors) > 10:
        lines.append(f"  not read: …and {len(summary.errors) - 10} more (see the error lines above)")
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
def _progress(unit: str, total: int | None = None) -> Iterator[tuple[Callable[[str], None], Advance]]:
    """On a terminal: a rich progress bar on stderr, with warnings printed above it."""
    if not sys.stderr.isatty():
        yield (lambda line: print_lines([line]), lambda records: None)
        return
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(unit, total=total)
        records = [0]

        def advance(count: int) -> None:
            records[0] += count
            suffix = f", {records[0]} records" if unit == "files" else ""
            bar.update(task, advance=1, description=f"{unit}{suffix}")

        yield (lambda line: console.print(line, markup=False, highlight=False), advance)
