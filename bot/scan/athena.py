"""`rootcheck scan --athena`: the pure part of the query. Validation, the table's layout, the SQL.

Athena does the heavy part (reading a year of an organization's trail) and rootcheck keeps the
judgement: the SQL keeps only what the detectors could call root use, by the detectors' own rules
(`check_record`), and every row is rebuilt into the CloudTrail record shape (`athena_rows`) and
judged by the same detectors as a file scan, so findings and ids are those of `scan --events`.

Nothing from the user reaches the SQL unless it was validated here first: account ids are 12 ASCII
digits, times are formatted by rootcheck, and database and table names are plain identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bot.scan.athena_rows import FIELDS, PATH, RECORD
from bot.scan.athena_table import parse_type
from bot.timeutil import iso_z

_IDENTIFIER = re.compile(r"[A-Za-z0-9_]{1,255}", re.ASCII)
_WORKGROUP = re.compile(r"[A-Za-z0-9._-]{1,128}", re.ASCII)
_ACCOUNT = re.compile(r"[0-9]{12}", re.ASCII)
_ACCOUNT_KEYS = ("account", "accountid", "account_id")
_DATE_TOKENS = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
REQUIRED = ("useridentity.type", "eventname")  # what the detectors cannot judge without


@dataclass(frozen=True)
class TableRef:
    """`[WORKGROUP/]DATABASE.TABLE`, validated."""

    workgroup: str | None
    database: str
    table: str

    def __str__(self) -> str:
        return f"{self.database}.{self.table}"


@dataclass(frozen=True)
class Layout:
    """What a table's Glue entry says about how to query it (see `layout`)."""

    fields: frozenset[str]  # the paths of FIELDS the table has; the others are selected as NULL
    text: frozenset[str] = frozenset()  # those that are strings (AWS's DDL: all); the others are cast
    date_key: str | None = None  # the partition holding the delivery day, if it is a projected date
    date_format: str | None = None  # strftime form of its projection format
    date_is_date: bool = False  # the partition column's own type is `date`, not a string
    first_day: date | None = None  # the start of its projection range, when it is a fixed date
    account_key: str | None = None  # the partition holding the account folder, if any
    account_injected: bool = False  # Athena refuses a query that does not name its values


@dataclass(frozen=True)
class Query:
    """One query of a scan: a label for people (the delivery days it reads) and its SQL."""

    label: str
    sql: str


def parse_table_ref(text: str) -> TableRef:
    """`[WORKGROUP/]DATABASE.TABLE`; ValueError for anything else (quotes, `;`, `--`, non-ASCII...)."""
    workgroup, slash, name = text.rpartition("/")
    database, dot, table = name.partition(".")
    if (
        not dot
        or not _IDENTIFIER.fullmatch(database)
        or not _IDENTIFIER.fullmatch(table)
        or (slash and not _WORKGROUP.fullmatch(workgroup))
    ):
        raise ValueError(
            f"--athena must be [WORKGROUP/]DATABASE.TABLE with names of letters, digits and '_' "
            f"(a workgroup may also have '.' and '-'), got {text!r}"
        )
    return TableRef(workgroup or None, database.lower(), table.lower())


def check_accounts(accounts: Iterable[str]) -> tuple[str, ...]:
    """The account ids, sorted; ValueError unless each is exactly 12 ASCII digits."""
    accounts = tuple(sorted(set(accounts)))
    bad = [a for a in accounts if not _ACCOUNT.fullmatch(a)]
    if bad:
        raise ValueError(f"--account must be a 12-digit account id, got {', '.join(map(repr, bad))}")
    return accounts


def layout(table: dict) -> Layout:
    """Read a Glue `GetTable` answer: which fields exist, and which partitions can narrow a query.

    AWS's account-trail table projects only `timestamp` (a date); an organization table adds
    `account` (usually injected) and often `region` (enumerated), which is left unfiltered.
    ValueError when the table lacks what the detectors need or its date format is unusable.
    """
    name = f"{table.get('DatabaseName', '?')}.{table.get('Name', '?')}"
    columns = {c["Name"].lower(): parse_type(c["Type"]) for c in table.get("StorageDescriptor", {}).get("Columns", [])}
    leaves = {path: _leaf(columns, path.split(".")) for path in FIELDS}
    fields = frozenset(path for path, kind in leaves.items() if kind)
    missing = [path for path in REQUIRED if path not in fields]
    if missing:
        raise ValueError(
            f"table {name} has no {' or '.join(missing)}: it is not a CloudTrail table "
            "(create one with `rootcheck athena-table`)"
        )
    parameters = {k.lower(): str(v) for k, v in (table.get("Parameters") or {}).items()}
    projected = parameters.get("projection.enabled", "").strip().lower() == "true"
    keys = [(k["Name"].lower(), k.get("Type", "string").lower()) for k in table.get("PartitionKeys", [])]
    text = frozenset(path for path, kind in leaves.items() if kind in ("string", "varchar"))
    result: dict[str, Any] = {"fields": fields, "text": text}
    for key, kind in keys:
        projection = parameters.get(f"projection.{key}.type", "").strip().lower() if projected else ""
        if key in _ACCOUNT_KEYS and "account_key" not in result:
            result.update(account_key=key, account_injected=projection == "injected")
        elif "date_key" not in result and (projection == "date" or kind == "date"):
            result.update(date_key=key, date_is_date=kind == "date")
            if kind != "date":
                result["date_format"] = _strftime(parameters.get(f"projection.{key}.format", ""), name, key)
            result["first_day"] = _range_start(
                parameters.get(f"projection.{key}.range", ""), result.get("date_format") or "%Y-%m-%d"
            )
    return Layout(**result)


def plan(
    ref: TableRef, table: Layout, since: datetime | None, until: datetime | None, accounts: tuple[str, ...], today: date
) -> list[Query]:
    """The queries of a scan: one per calendar month of the window, or one without a date partition.

    Each query reads its month's delivery days once; the first also reads the day before `since`
    and the last the day after `until` (late delivery). The exact `eventTime` window applies to all.
    Without `since` the window starts where the table's projection does; without `until`, today.
    """
    if table.account_injected and not accounts:
        raise ValueError(
            f"table {ref} takes its `{table.account_key}` partition from the query (injected "
            "projection), and Athena refuses a query that does not name it: pass --account ID "
            "(repeatable) with the accounts to scan"
        )
    if table.date_key is None:
        return [Query("the whole table", _sql(ref, table, None, since, until, accounts))]
    first = since.date() if since else table.first_day
    last = until.date() if until else today
    if first is None:
        last += timedelta(days=1)
        return [Query(f"delivery days up to {last}", _sql(ref, table, (None, last), since, until, accounts))]
    spans = list(_months(first, max(first, last)))
    spans[0] = (spans[0][0] - timedelta(days=1), spans[0][1])  # a day's slack for late delivery, each side
    spans[-1] = (spans[-1][0], spans[-1][1] + timedelta(days=1))
    return [
        Query(f"delivery days {start} to {end}", _sql(ref, table, (start, end), since, until, accounts))
        for start, end in spans
    ]


def _sql(
    ref: TableRef,
    table: Layout,
    days: tuple[date | None, date] | None,
    since: datetime | None,
    until: datetime | None,
    accounts: tuple[str, ...],
) -> str:
    select = ",\n    ".join([*(_column(path, table) for path in FIELDS), f'"{PATH}"'])
    where = []
    if days is not None:
        where.append(_days(table, *days))
    if table.account_key and accounts:
        quoted = ", ".join(f"'{account}'" for account in check_accounts(accounts))  # 12 digits each
        where.append(f'"{table.account_key}" IN ({quoted})')
    where += _detector_rules(table)
    if "eventtime" in table.fields and (since or until):
        where.append(_event_time(since, until))
    return (
        f'SELECT json_format(CAST(ARRAY[\n    {select}\n  ] AS JSON)) AS "{RECORD}"\n'
        f'FROM "{ref.database}"."{ref.table}"\nWHERE ' + "\n  AND ".join(where)
    )


def _detector_rules(table: Layout) -> list[str]:
    """`check_record`'s rules: root only; a service event or a service acting as root is not a
    finding unless it is a sign-in. Values are compared trimmed and case-insensitively, as there."""
    rules = ["lower(trim(useridentity.type)) = 'root'"]
    not_service = []
    if "eventtype" in table.fields:
        not_service.append("coalesce(lower(trim(eventtype)), '') <> 'awsserviceevent'")
    if "useridentity.invokedby" in table.fields:
        not_service.append("coalesce(lower(trim(useridentity.invokedby)), '') IN ('', 'signin.amazonaws.com')")
    if not_service:
        rules.append(f"(eventname = 'ConsoleLogin' OR ({' AND '.join(not_service)}))")
    return rules


def _event_time(since: datetime | None, until: datetime | None) -> str:
    """The exact window (the detectors' seconds), keeping rows whose `eventtime` cannot be read.

    rootcheck compares event times to the second: `since` is rounded up and the end is the
    second after `until`, so the SQL keeps exactly the rows the file scan keeps.
    """
    moment = "try(from_iso8601_timestamp(eventtime))"
    bounds = []
    if since is not None:
        start = since.replace(microsecond=0) + (timedelta(seconds=1) if since.microsecond else timedelta())
        bounds.append(f"{moment} >= from_iso8601_timestamp('{iso_z(start)}')")
    if until is not None:
        bounds.append(
            f"{moment} < from_iso8601_timestamp('{iso_z(until.replace(microsecond=0) + timedelta(seconds=1))}')"
        )
    return f"({moment} IS NULL OR ({' AND '.join(bounds)}))"


def _days(table: Layout, first: date | None, last: date) -> str:
    key = f'"{table.date_key}"'
    end = _day_literal(table, datetime.combine(last, time(23, 59, 59)))
    if first is None:
        return f"{key} <= {end}"
    return f"{key} BETWEEN {_day_literal(table, datetime.combine(first, time()))} AND {end}"


def _day_literal(table: Layout, moment: datetime) -> str:
    if table.date_is_date:
        return f"DATE '{moment:%Y-%m-%d}'"
    return f"'{moment.strftime(table.date_format or '%Y/%m/%d')}'"


def _months(first: date, last: date) -> Iterator[tuple[date, date]]:
    start = first
    while start <= last:
        following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        end = min(last, following - timedelta(days=1))
        yield start, end
        start = end + timedelta(days=1)


def _column(path: str, table: Layout) -> str:
    """A field as an element of the row's array (all text), or NULL where the table lacks it."""
    if path not in table.fields:
        return "CAST(NULL AS varchar)"
    return path if path in table.text else f"CAST({path} AS varchar)"


def _leaf(columns: dict, parts: list[str]) -> str | None:
    """The scalar type at a path of the table's columns, or None when there is none there."""
    kind = columns.get(parts[0])
    for part in parts[1:]:
        if not (isinstance(kind, tuple) and kind[0] == "struct"):
            return None
        kind = dict(kind[1]).get(part)
    return kind if isinstance(kind, str) else None


def _strftime(java: str, table: str, key: str) -> str:
    """A projection's Java date format as strftime, when its text sorts as its dates do.

    Partition values are compared as text (BETWEEN), which is right only when the fields run
    from year down (yyyy, MM, dd, HH, mm, ss) with fixed separators; anything else is refused.
    """
    parts = re.findall(r"yyyy|MM|dd|HH|mm|ss|'[^']*'|[/._ -]", java)
    tokens = [p for p in parts if p in _DATE_TOKENS]
    if not java or "".join(parts) != java or tokens != list(_DATE_TOKENS)[: len(tokens)] or not tokens:
        raise ValueError(
            f"table {table}: partition `{key}` has the date format {java!r}, which rootcheck cannot "
            "compare (use yyyy/MM/dd, as AWS's table does)"
        )
    return "".join(_DATE_TOKENS.get(p, p.strip("'").replace("%", "%%")) for p in parts)


def _range_start(text: str, fmt: str) -> date | None:
    """The first day of a projection range like `2020/01/01,NOW`; None when it is relative."""
    try:
        return datetime.strptime(text.split(",")[0].strip(), fmt).replace(tzinfo=UTC).date()
    except ValueError:
        return None
