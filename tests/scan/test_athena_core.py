"""The pure part of `scan --athena`: validation, the table's layout, the SQL, and rows → records."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.checks.cloudtrail import check_record
from bot.scan.athena import check_accounts, layout, parse_table_ref, plan
from bot.scan.athena_rows import FIELDS, PATH, read_rows
from bot.scan.athena_table import COLUMNS, parse_type
from tests.scan.athena_fixtures import glue_table, results_file

sqlglot = pytest.importorskip("sqlglot")

SINCE = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
UNTIL = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)


def _table(org: bool = False, **changes) -> dict:
    table = dict(glue_table("cloudtrail", "s3://trail/AWSLogs/", org=org), DatabaseName="db")
    for key, value in changes.items():
        table[key] = value
    return table


@pytest.mark.parametrize(
    "text,expected",
    [
        ("db.t", (None, "db", "t")),
        ("Security_Logs.CloudTrail_PP", (None, "security_logs", "cloudtrail_pp")),
        ("rootcheck-wg.1/db.t", ("rootcheck-wg.1", "db", "t")),
    ],
)
def test_table_refs(text, expected):
    ref = parse_table_ref(text)
    assert (ref.workgroup, ref.database, ref.table) == expected


@pytest.mark.parametrize(
    "text", ["db.t'--", "db.t;", "db", "db.t.x", "/db.t", "w g/db.t", "db.t\n", "dé.t", "db.`t`", "", "wg/", "a/b/db.t"]
)
def test_table_refs_refused(text):
    with pytest.raises(ValueError, match=r"--athena must be \[WORKGROUP/\]DATABASE.TABLE"):
        parse_table_ref(text)


def test_accounts_are_twelve_ascii_digits():
    assert check_accounts(["444455556666", "111122223333", "111122223333"]) == ("111122223333", "444455556666")
    for bad in ("11112222333", "1111222233334", "١١١١٢٢٢٢٣٣٣٣", "111122223333\n", "11112222333x"):
        with pytest.raises(ValueError, match="12-digit"):
            check_accounts([bad])


def test_layout_of_aws_account_and_organization_tables():
    account = layout(_table())
    assert (account.date_key, account.date_format, account.account_key) == ("timestamp", "%Y/%m/%d", None)
    assert account.first_day == date(2013, 11, 1) and set(FIELDS) == account.fields
    org = layout(_table(org=True))
    assert (org.account_key, org.account_injected, org.date_key) == ("account", True, "timestamp")


def _selected(sql: str) -> dict[str, str]:
    """Each field of the query's array, by its path."""
    elements = sql.split("ARRAY[\n")[1].split("\n  ] AS JSON")[0].split(",\n")
    return dict(zip([*FIELDS, PATH], (element.strip() for element in elements)))


def test_the_query_selects_each_field_as_text_in_one_json_array():
    (query,) = plan(parse_table_ref("db.t"), layout(_table()), SINCE, UNTIL, (), TODAY)
    assert query.sql.startswith("SELECT json_format(CAST(ARRAY[\n")
    assert _selected(query.sql) == {**{path: path for path in FIELDS}, PATH: '"$path"'}
    assert '] AS JSON)) AS "rootcheck_record"\nFROM "db"."t"\n' in query.sql


def test_an_older_table_without_some_fields_selects_them_as_null_and_still_parses():
    columns = [(n, t.replace("invokedby:string,", "")) for n, t in COLUMNS if n != "sessioncredentialfromconsole"]
    columns = [(n, "boolean" if n == "readonly" else t) for n, t in columns]
    table = layout(dict(glue_table("old", "s3://trail/", org=False, columns=columns), DatabaseName="db"))
    (query,) = plan(parse_table_ref("db.old"), table, SINCE, UNTIL, (), TODAY)
    selected = _selected(query.sql)
    assert selected["sessioncredentialfromconsole"] == selected["useridentity.invokedby"] == "CAST(NULL AS varchar)"
    assert selected["readonly"] == "CAST(readonly AS varchar)"  # an array's elements share one type
    assert "invokedby)" not in query.sql  # the rule on a missing field is left out, not guessed
    sqlglot.parse_one(query.sql, read="trino")


def test_a_table_that_is_not_cloudtrail_is_refused():
    table = _table()
    table["StorageDescriptor"] = {"Columns": [{"Name": "eventname", "Type": "string"}]}
    with pytest.raises(ValueError, match="no useridentity.type: it is not a CloudTrail table"):
        layout(table)


def test_date_partitions_other_formats_and_none():
    hourly = _table(
        Parameters={
            "projection.enabled": "true",
            "projection.timestamp.type": "date",
            "projection.timestamp.format": "'dt='yyyy-MM-dd'/hour='HH",
            "projection.timestamp.range": "NOW-2YEARS,NOW",
        }
    )
    found = layout(hourly)
    assert found.date_format == "dt=%Y-%m-%d/hour=%H" and found.first_day is None
    (query,) = plan(parse_table_ref("db.t"), found, SINCE, UNTIL, (), TODAY)
    assert "\"timestamp\" BETWEEN 'dt=2026-03-01/hour=00' AND 'dt=2026-03-05/hour=23'" in query.sql
    typed = _table(PartitionKeys=[{"Name": "day", "Type": "date"}], Parameters={})
    (query,) = plan(parse_table_ref("db.t"), layout(typed), SINCE, UNTIL, (), TODAY)
    assert "\"day\" BETWEEN DATE '2026-03-01' AND DATE '2026-03-05'" in query.sql
    manual = _table(Parameters={})  # partitions added by hand: no projection to read the format from
    assert layout(manual).date_key is None
    (query,) = plan(parse_table_ref("db.t"), layout(manual), SINCE, UNTIL, (), TODAY)
    assert query.label == "the whole table" and "BETWEEN" not in query.sql
    unordered = _table(
        Parameters={
            "projection.enabled": "true",
            "projection.timestamp.type": "date",
            "projection.timestamp.format": "dd/MM/yyyy",
        }
    )
    with pytest.raises(ValueError, match="date format 'dd/MM/yyyy'"):
        layout(unordered)


def test_without_since_the_scan_starts_where_the_projection_does_and_ends_tomorrow():
    queries = plan(parse_table_ref("db.t"), layout(_table()), None, None, (), date(2014, 1, 15))
    assert [q.label for q in queries] == [
        "delivery days 2013-10-31 to 2013-11-30",
        "delivery days 2013-12-01 to 2013-12-31",
        "delivery days 2014-01-01 to 2014-01-16",
    ]
    assert "eventtime" not in queries[0].sql.split("WHERE")[1]  # no window: no time filter


def test_every_planned_query_is_valid_trino():
    for table, accounts in ((_table(), ()), (_table(org=True), ("111122223333", "444455556666"))):
        for query in plan(parse_table_ref("db.t"), layout(table), SINCE, None, accounts, TODAY):
            sqlglot.parse_one(query.sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)


def test_the_injected_account_partition_needs_accounts():
    with pytest.raises(ValueError, match="pass --account ID"):
        plan(parse_table_ref("db.t"), layout(_table(org=True)), SINCE, UNTIL, (), TODAY)


def _results(**values) -> tuple[bytes, bytes]:
    header, _, rows = results_file([[values.get(path) for path in FIELDS] + [values.get(PATH)]]).partition("\n")
    return header.encode(), rows.encode()


def test_rows_become_camel_case_records_with_their_types_restored():
    header, rows = _results(
        **{
            "eventid": "e1",
            "eventname": "CreateUser",
            "eventsource": "iam.amazonaws.com",
            "readonly": "false",
            "responseelements": '{"user": {"userName": "x"}}',
            "additionaleventdata": "not json",
            "useragent": 'a "b",\nc',
            "errorcode": "",
            "useridentity.type": "Root",
            "useridentity.accesskeyid": "ASIAX",
            "useridentity.sessioncontext.attributes.mfaauthenticated": "true",
            "$path": "s3://b/AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/us-east-1/2026/03/03/f.json.gz",
        }
    )
    ((record, hint),) = read_rows(header, rows)
    assert record == {
        "eventID": "e1",
        "eventName": "CreateUser",
        "eventSource": "iam.amazonaws.com",
        "readOnly": False,
        "responseElements": {"user": {"userName": "x"}},
        "additionalEventData": "not json",
        "userAgent": 'a "b",\nc',
        "userIdentity": {
            "type": "Root",
            "accessKeyId": "ASIAX",
            "sessionContext": {"attributes": {"mfaAuthenticated": "true"}},
        },
    }
    assert hint == "111122223333"
    finding = check_record(record, hint)
    assert (finding.account_id, finding.mfa_used, finding.clues.access_key_id) == ("111122223333", True, "ASIAX")


def test_results_of_another_shape_are_refused():
    with pytest.raises(ValueError, match="do not have the column"):
        list(read_rows(b'"eventid","eventname"', b'"e","n"\n'))
    header, _ = _results()
    for line in (b'"e","n"', b'"[""e""]"', b'"{}"', b"[1]", b'"[' + b",".join([b"null"] * 26) + b"]"):
        with pytest.raises(ValueError, match="is not a row of 25 fields"):
            list(read_rows(header, line + b"\n"))


def test_hive_types_parse_into_trees():
    assert parse_type("struct<A:string,b:array<struct<c:int>>,m:map<string,string>>") == (
        "struct",
        (("a", "string"), ("b", ("array", ("struct", (("c", "int"),)))), ("m", ("map", "string", "string"))),
    )
    assert parse_type("decimal(10, 2)") == "decimal(10,2)"
    for bad in ("struct<a:string", "struct<a string>", "map<string>", "array<>"):
        with pytest.raises(ValueError):
            parse_type(bad)
