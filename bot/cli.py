"""`rootcheck serve | scan | doctor | health | athena-table`: argument parsing only; each command's work lives
in its face (`bot.scan`, `bot.serve`), imported when the command runs."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.exits import EXIT_ERROR, UsageError
from bot.timeutil import parse_instant, utcnow

if TYPE_CHECKING:
    from bot.scan.athena import TableRef

_ACCOUNT = re.compile(r"^\d{12}$")


def main(argv: Sequence[str] | None = None) -> int:
    _raise_open_files_limit()
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as exc:
        print(f"rootcheck: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _raise_open_files_limit() -> None:
    """A sweep keeps a few keep-alive connections per account (about 3,000 sockets for 1,000
    accounts), above the common soft limit of 1,024: use the hard limit instead."""
    try:
        import resource  # noqa: PLC0415 - POSIX only

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = hard if hard != resource.RLIM_INFINITY else 65536
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ImportError, ValueError, OSError):
        pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rootcheck", description="Watch AWS accounts for use of the root user.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    scan = commands.add_parser("scan", help="run one sweep now (or analyse files) and print the findings")
    scan.add_argument(
        "--events",
        action="append",
        default=[],
        metavar="PATH",
        help="CloudTrail records: file, folder, '-' for stdin, or s3://bucket/prefix/ (repeatable)",
    )
    scan.add_argument(
        "--credential-report",
        action="append",
        default=[],
        metavar="PATH",
        help="IAM credential report CSV (repeatable)",
    )
    scan.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="ID",
        help="limit the sweep or the records reported to this account (repeatable)",
    )
    scan.add_argument("--since", help="start: a duration back from now (24h, 7d) or an ISO 8601 time")
    scan.add_argument("--until", help="end: a duration back from now or an ISO 8601 time")
    scan.add_argument(
        "--format",
        choices=("table", "json"),
        default=None,
        help="output format (default: table on a terminal, json otherwise)",
    )
    scan.add_argument(
        "--athena",
        metavar="[WORKGROUP/]DATABASE.TABLE",
        help="run the root filter as Athena queries over this CloudTrail table (see athena-table)",
    )
    scan.add_argument(
        "--max-scan-gb",
        type=float,
        default=100.0,
        metavar="GB",
        help="with --athena: stop when the queries have scanned this much (default 100, about $0.50)",
    )
    scan.add_argument("--workers", type=int, default=None, help=argparse.SUPPRESS)
    scan.set_defaults(handler=_scan)
    table = commands.add_parser("athena-table", help="print the Athena CREATE EXTERNAL TABLE for a CloudTrail trail")
    table.add_argument(
        "--bucket",
        required=True,
        metavar="s3://BUCKET[/PREFIX]",
        help="the trail's bucket, and the prefix the trail writes under if it has one",
    )
    table.add_argument("--org", metavar="o-…", help="an organization trail: the organization id")
    table.add_argument(
        "--account",
        metavar="ID",
        help="an account trail's account id (without it, the table takes accounts at query time)",
    )
    table.add_argument(
        "--regions", metavar="R1,R2,…", help="Regions to cover (default: the 17 Regions every account has enabled)"
    )
    table.set_defaults(handler=_athena_table)
    serve = commands.add_parser("serve", help="run the bot: Slack listener, scheduler, queue consumer")
    serve.set_defaults(handler=_serve)
    doctor = commands.add_parser("doctor", help="check configuration and connectivity, and say how to fix it")
    doctor.set_defaults(handler=_doctor)
    health = commands.add_parser("health", help="ask the local serve process's /healthz (for HEALTHCHECK)")
    health.set_defaults(handler=_health)
    return parser


def _scan(args: argparse.Namespace) -> int:
    accounts = frozenset(args.account)
    bad = sorted(a for a in accounts if not _ACCOUNT.match(a))
    if bad:
        raise UsageError(f"--account must be a 12-digit account id, got {', '.join(map(repr, bad))}")
    now = utcnow()
    since = _instant("--since", args.since, now)
    until = _instant("--until", args.until, now)
    if since and until and since > until:
        raise UsageError("--since is after --until")
    output = args.format or ("table" if sys.stdout.isatty() else "json")
    from bot.scan import command as scan_command  # noqa: PLC0415 - keeps `--help` and other commands light

    if args.athena is not None:
        return scan_command.run_athena(args, _athena_table_ref(args), since, until, _athena_accounts(accounts), output)
    if args.events or args.credential_report:
        return scan_command.run_offline(args, since, until, accounts, output)
    return scan_command.run_live(args, since, until, accounts, output)


def _athena_table_ref(args: argparse.Namespace) -> TableRef:
    """`--athena`'s table, checked (like every value that reaches the SQL) before any AWS call."""
    from bot.scan.athena import parse_table_ref  # noqa: PLC0415

    if args.events or args.credential_report:
        raise UsageError("--athena reads a table, not files: leave out --events and --credential-report")
    if not args.max_scan_gb > 0:
        raise UsageError(f"--max-scan-gb must be more than 0, got {args.max_scan_gb:g}")
    try:
        return parse_table_ref(args.athena)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _athena_accounts(accounts: frozenset[str]) -> tuple[str, ...]:
    """The accounts again, stricter than `_ACCOUNT` (which lets other scripts' digits and a final newline
    through): they go into the SQL."""
    from bot.scan.athena import check_accounts  # noqa: PLC0415

    try:
        return check_accounts(accounts)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _athena_table(args: argparse.Namespace) -> int:
    """Print the DDL on stdout (pipe it to Athena) and what to do next on stderr."""
    from bot.scan.athena_table import create_table, trail  # noqa: PLC0415

    try:
        where = trail(args.bucket, args.org, args.account, args.regions)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.write(create_table(where))
    accounts = "" if where.account else " --account ID"
    print(
        f"rootcheck: run this in Athena (in the database of your choice), then: rootcheck scan --athena "
        f"DATABASE.cloudtrail_logs_pp{accounts} --since 90d",
        file=sys.stderr,
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from bot.config import ConfigError  # noqa: PLC0415
    from bot.serve.main import main as serve  # noqa: PLC0415

    try:
        return serve()
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _doctor(args: argparse.Namespace) -> int:
    from bot.config import ConfigError, load_settings  # noqa: PLC0415
    from bot.serve.doctor import run  # noqa: PLC0415

    try:
        return run(load_settings())
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _health(args: argparse.Namespace) -> int:
    """Exit 0 when the local `serve` answers /healthz with 200; works in both Slack modes."""
    import os  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    host = os.environ.get("ROOTCHECK_HOST", "127.0.0.1")
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{host}:{os.environ.get('PORT', '3000')}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            print(response.read().decode())
            return 0
    except OSError as exc:
        print(f"rootcheck: {url}: {exc}", file=sys.stderr)
        return 1


def _instant(flag: str, value: str | None, now):
    if value is None:
        return None
    try:
        return parse_instant(value, now)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None
