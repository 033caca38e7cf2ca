"""Stand-ins for what Athena does to a trail, built from AWS's DDL (`bot.scan.athena_table.COLUMNS`).

- `serde_row`: a CloudTrail record as the table's row, the way the JSON SerDe reads it: keys
  matched case-insensitively, structs by field, an object or array in a STRING column kept as
  its JSON text, booleans and numbers as text; plus the partitions and `$path` from the file's key.
  `result_row`: the fields of it `scan --athena`'s query selects; `results_file`: those rows as
  the query's results file.
- `load_duckdb`: an archive (`AWSLogs/[o-…/]<account>/CloudTrail/<region>/YYYY/MM/DD/…`) into a
  DuckDB table with the same column names and nested types as AWS's DDL.
- `DuckDBEngine`: the `Engine` of `bot.scan.athena_scan` on that table: the SQL is parsed with
  sqlglot as Trino (Athena's engine), transpiled to DuckDB and run; results are Athena's CSV.
- `athena_csv`: Athena's results CSV: a header, every value quoted (quotes doubled), NULL empty.
- `glue_table`: the Glue `TableInput` of AWS's table, for a moto Glue catalog.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bot.aws.athena import QueryStatus
from bot.checks.records import is_archive_file, unwrap
from bot.scan.athena_rows import FIELDS, PATH, RECORD
from bot.scan.athena_table import COLUMNS, parse_type

TYPES = {name: parse_type(kind) for name, kind in COLUMNS}
PARTITIONS = ("account", "region", "timestamp")
_LAYOUT = re.compile(r"AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/CloudTrail/([^/]+)/(\d{4}/\d{2}/\d{2})/")


def serde_row(record: dict, key: str, bucket: str) -> dict:
    """One table row (column → value, None for NULL) of a record in s3://bucket/key."""
    lowered = {k.lower(): v for k, v in record.items()}
    row = {name: _convert(lowered.get(name), kind) for name, kind in TYPES.items()}
    match = _LAYOUT.search(key)
    row.update(zip(PARTITIONS, match.groups() if match else (None, None, None)))
    row["$path"] = f"s3://{bucket}/{key}"
    return row


def result_row(record: dict, key: str, bucket: str) -> list:
    """The fields `scan --athena`'s query selects for a record in s3://bucket/key (FIELDS, then $path)."""
    row = serde_row(record, key, bucket)
    values = []
    for path in FIELDS:
        value = row
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values.append(value)
    return values + [row[PATH]]


def results_file(rows: Iterable[list], header: bool = True) -> str:
    """Athena's results CSV of `scan --athena`'s query: one column, each row's fields as a JSON array."""
    cells = [[json.dumps(row, ensure_ascii=False, separators=(",", ":"))] for row in rows]
    text = athena_csv([RECORD], cells)
    return text if header else text.partition("\n")[2]


def _convert(value: Any, kind) -> Any:
    if value is None:
        return None
    if isinstance(kind, str):  # a scalar column: text
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return str(value)
    if kind[0] == "struct":
        if not isinstance(value, dict):
            return None
        lowered = {k.lower(): v for k, v in value.items()}
        return {name: _convert(lowered.get(name), sub) for name, sub in kind[1]}
    if kind[0] == "array":
        return [_convert(item, kind[1]) for item in value] if isinstance(value, list) else None
    return {str(k): _convert(v, kind[2]) for k, v in value.items()} if isinstance(value, dict) else None


def archive_rows(root: Path, bucket: str) -> Iterator[dict]:
    """The rows of every readable trail file under `root` (keys relative to it, as in the bucket)."""
    for path in sorted(root.rglob("*")):
        if not path.is_file() or not is_archive_file(path.name):
            continue
        try:
            value = json.loads(gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes())
        except (OSError, EOFError, ValueError):  # a corrupt file: Athena would fail the query
            continue
        key = path.relative_to(root).as_posix()
        for record in unwrap(value):
            if isinstance(record, dict):
                yield serde_row(record, key, bucket)


def _duckdb_type(kind) -> str:
    if isinstance(kind, str):
        return "VARCHAR"
    if kind[0] == "struct":
        return "STRUCT(" + ", ".join(f'"{name}" {_duckdb_type(sub)}' for name, sub in kind[1]) + ")"
    if kind[0] == "array":
        return f"{_duckdb_type(kind[1])}[]"
    return f"MAP({_duckdb_type(kind[1])}, {_duckdb_type(kind[2])})"


def load_duckdb(con, rows: Iterable[dict], folder: Path, database: str = "db", table: str = "cloudtrail") -> int:
    """Create `database.table` (AWS's columns, then account, region, timestamp, $path) and fill it."""
    types = {name: _duckdb_type(kind) for name, kind in TYPES.items()}
    types.update({name: "VARCHAR" for name in (*PARTITIONS, "$path")})
    data = folder / f"{table}.jsonl"
    with data.open("w") as handle:
        count = sum(1 for row in rows if handle.write(json.dumps(row) + "\n"))
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{database}"')
    con.execute(
        f'CREATE TABLE "{database}"."{table}" (' + ", ".join(f'"{name}" {kind}' for name, kind in types.items()) + ")"
    )
    spec = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in types.items()) + "}"
    con.execute(
        f'INSERT INTO "{database}"."{table}" SELECT * FROM read_json(\'{data}\', '
        f"format='newline_delimited', columns={spec})"
    )
    return count


def athena_csv(header: list[str], rows: Iterable[tuple]) -> str:
    """Rows as Athena writes a results file."""

    def cell(value: Any) -> str:
        return "" if value is None else '"' + str(value).replace('"', '""') + '"'

    lines = [",".join(cell(name) for name in header)]
    lines += [",".join(cell(value) for value in row) for row in rows]
    return "\n".join(lines) + "\n"


class DuckDBEngine:
    """Athena on DuckDB: `start` parses the SQL as Trino (a syntax error fails the test), runs it,
    and keeps the results as Athena's CSV under a made-up s3:// location."""

    def __init__(self, con):
        self.con = con
        self.queries: list[str] = []
        self.rows: dict[str, tuple[list[str], list[tuple]]] = {}  # query id -> header, rows
        self.files: dict[str, str] = {}  # query id -> results CSV

    def start(self, sql: str, database: str) -> str:
        import sqlglot

        statement = sqlglot.parse_one(sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
        cursor = self.con.execute(statement.sql(dialect="duckdb"))
        header = [column[0] for column in cursor.description]
        query_id = f"q{len(self.queries) + 1}"
        self.queries.append(sql)
        self.rows[query_id] = (header, cursor.fetchall())
        self.files[query_id] = athena_csv(*self.rows[query_id])
        return query_id

    def status(self, query_id: str) -> QueryStatus:
        return QueryStatus("SUCCEEDED", 0, "", f"s3://results/{query_id}.csv")

    def stop(self, query_id: str) -> None:
        raise AssertionError("nothing to stop: DuckDB queries end before start returns")

    def results(self, location: str) -> Iterator[bytes]:
        yield self.files[location.rsplit("/", 1)[1].removesuffix(".csv")].encode()


def glue_table(
    name: str,
    location: str,
    org: bool = True,
    first_day: str = "2013/11/01",
    columns: Iterable[tuple[str, str]] = COLUMNS,
) -> dict:
    """A Glue `TableInput` for AWS's table: projected `timestamp`; with `org`, injected `account`
    and enumerated `region`, as `rootcheck athena-table --org` creates it."""
    keys = (["account", "region"] if org else []) + ["timestamp"]
    parameters = {
        "EXTERNAL": "TRUE",
        "projection.enabled": "true",
        "projection.timestamp.type": "date",
        "projection.timestamp.format": "yyyy/MM/dd",
        "projection.timestamp.interval": "1",
        "projection.timestamp.interval.unit": "DAYS",
        "projection.timestamp.range": f"{first_day},NOW",
    }
    if org:
        parameters.update(
            {
                "projection.account.type": "injected",
                "projection.region.type": "enum",
                "projection.region.values": "us-east-1,eu-west-1",
            }
        )
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "PartitionKeys": [{"Name": key, "Type": "string"} for key in keys],
        "StorageDescriptor": {
            "Columns": [{"Name": n, "Type": t} for n, t in columns],
            "Location": location,
            "InputFormat": "com.amazon.emr.cloudtrail.CloudTrailInputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hive.hcatalog.data.JsonSerDe"},
        },
    }
