"""The Athena query is right, not just well-formed.

A trail (the generated organization archive of `tests/archive.py`, the example archive, and a
file of edge cases: the corpus, an unreadable time, service events, odd spellings, the window's
edges) is loaded into DuckDB with AWS's DDL's column names and nested types, as the JSON SerDe
reads it. The SQL `scan --athena` plans is parsed with sqlglot as Trino, transpiled to DuckDB and
run there; its rows, through the results CSV, the record rebuild and the detectors, must give
exactly the findings (same ids, same JSON lines, same grouping clues) that `rootcheck scan
--events` gives on the files.
"""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.checks.records import unwrap
from bot.scan.athena import layout, parse_table_ref, plan
from bot.scan.athena_scan import AthenaScan
from bot.scan.offline import OfflineScan, Window
from tests.archive import ORG, generate
from tests.conftest import CORPUS, json_lines
from tests.scan.athena_fixtures import DuckDBEngine, archive_rows, glue_table, load_duckdb

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("sqlglot")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cloudtrail"
ORG_TABLE = parse_table_ref("db.cloudtrail")
ACCOUNT_TABLE = parse_table_ref("db.account_trail")
TODAY = date(2026, 12, 1)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _edge_records(account: str) -> list[dict]:
    """The corpus records (moved into `account`, as a trail delivers them) and constructed edge cases."""
    records = []
    for path in sorted(CORPUS.glob("[0-9]*.json")):
        for record in unwrap(json.loads(path.read_text())):
            if record.get("recipientAccountId", "").isdigit():
                record["recipientAccountId"] = account
            records.append(record)
    login = json.loads((CORPUS / "01_root_console_login_success_no_mfa.json").read_text())
    call = json.loads((CORPUS / "12_root_put_bucket_versioning.json").read_text())

    def variant(base: dict, event_id: str, **changes) -> dict:
        record = json.loads(json.dumps(base))
        record.update(eventID=event_id, recipientAccountId=account, **changes)
        return record

    records += [
        variant(call, "edge-unreadable-time", eventTime="not a time"),
        variant(call, "edge-no-time", eventTime=None),
        variant(login, "edge-login-as-service-event", eventType="AwsServiceEvent", eventTime="2026-03-03T01:00:00Z"),
        variant(call, "edge-service-event-lower", eventType=" awsserviceevent ", eventTime="2026-03-03T01:00:01Z"),
        variant(
            call,
            "edge-root-spaced",
            userIdentity={"type": " root ", "invokedBy": "  ", "accessKeyId": "ASIAEDGE"},
            eventTime="2026-03-03T01:00:02Z",
            sessionCredentialFromConsole="true",
            readOnly=False,
        ),
        variant(
            call,
            "edge-service-acting",
            userIdentity={"type": "Root", "invokedBy": "elasticloadbalancing.amazonaws.com"},
            eventTime="2026-03-03T01:00:03Z",
        ),
        variant(call, "edge-until-fraction", eventTime="2026-03-04T12:00:00.500Z"),
        variant(call, "edge-after-until", eventTime="2026-03-04T12:00:01Z"),
        variant(call, "edge-since-exact", eventTime="2026-03-02T12:00:00Z"),
        variant(call, "edge-before-since", eventTime="2026-03-02T11:59:59Z"),
        variant(
            login,
            "edge-aed-as-text",
            eventTime="2026-03-03T02:00:00Z",
            additionalEventData=json.dumps({"MFAUsed": "Yes"}),
            responseElements=json.dumps({"ConsoleLogin": "Success"}),
        ),
        variant(
            call,
            "edge-quotes-and-newline",
            eventTime="2026-03-03T03:00:00Z",
            userAgent='curl/8 "quoted", with comma\nand a newline',
            errorMessage='Access "denied"',
            errorCode="",
        ),
    ]
    orphan = variant(call, "edge-account-from-path", eventTime="2026-03-03T04:00:00Z")
    del orphan["recipientAccountId"]
    orphan["userIdentity"] = {"type": "Root", "accountId": "redacted"}
    return records + [orphan]


@pytest.fixture(scope="module")
def trail(tmp_path_factory):
    """The archive on disk, and the same in DuckDB as an organization trail table."""
    root = tmp_path_factory.mktemp("trail")
    archive = generate(root, accounts=3, days=3, files=18, records_per_file=40, corrupt=False, corrupt_outside=False)
    shutil.copytree(EXAMPLES, root, dirs_exist_ok=True)
    account = archive.accounts[0]
    folder = root / "AWSLogs" / ORG / account / "CloudTrail" / "us-east-1" / "2026" / "03" / "03"
    folder.mkdir(parents=True, exist_ok=True)
    edge = folder / f"{account}_CloudTrail_us-east-1_20260303T1200Z_edge.json.gz"
    edge.write_bytes(gzip.compress(json.dumps({"Records": _edge_records(account)}).encode()))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    load_duckdb(con, archive_rows(root, "org-trail-bucket"), tmp_path_factory.mktemp("duckdb"), table="cloudtrail")
    con.execute('CREATE TABLE "db"."account_trail" AS SELECT * EXCLUDE (account, region) FROM "db"."cloudtrail"')
    accounts = sorted({p.name for p in (root / "AWSLogs").glob("o-*/*") if p.name.isdigit()})
    return {"root": root, "con": con, "accounts": accounts, "archive": archive}


def _athena(trail, ref, since, until, accounts=()):
    table = dict(
        glue_table(ref.table, "s3://org-trail-bucket/AWSLogs/", org=ref is ORG_TABLE, first_day="2026/02/01"),
        DatabaseName="db",
    )
    engine = DuckDBEngine(trail["con"])
    window = Window(since, until, frozenset(accounts))
    warnings: list[str] = []
    scan = AthenaScan(
        engine, "db", plan(ref, layout(table), since, until, tuple(accounts), TODAY), window, warnings.append
    )
    return list(scan.run_queries()), scan, engine


def _file_scan(run_rootcheck, trail, *args):
    result = run_rootcheck("scan", "--events", str(trail["root"]), "--format", "json", "--workers", "1", *args)
    assert result.returncode in (0, 1), result.stderr.decode()
    return json_lines(result.stdout)


def _in_process(trail, since, until, accounts=()):
    scan = OfflineScan(Window(since, until, frozenset(accounts)), warn=lambda line: None, workers=1)
    return list(scan.run([str(trail["root"])], []))


CASES = {
    "archive window": ("2026-03-02T12:00:00Z", "2026-03-04T12:00:00Z", ()),
    "examples window": ("2026-11-26T00:00:00Z", "2026-11-28T00:00:00Z", ()),
    "months, split": ("2026-02-01T00:00:00Z", "2026-11-30T00:00:00Z", ()),
    "one account": ("2026-02-20T00:00:00Z", "2026-11-30T00:00:00Z", "first"),
    "since only": ("2026-03-03T00:00:00Z", None, ()),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("ref", [ORG_TABLE, ACCOUNT_TABLE], ids=["org table", "account table"])
def test_query_rows_give_exactly_the_file_scans_findings(run_rootcheck, trail, case, ref):
    since_text, until_text, accounts = CASES[case]
    accounts = trail["accounts"][:1] if accounts == "first" else accounts
    if ref is ORG_TABLE and not accounts:
        accounts = trail["accounts"]  # the injected `account` partition needs them named
    since, until = _utc(since_text), until_text and _utc(until_text)
    args = ["--since", since_text] + (["--until", until_text] if until_text else [])
    args += [arg for account in accounts for arg in ("--account", account)]
    expected = _file_scan(run_rootcheck, trail, *args)
    found, scan, engine = _athena(trail, ref, since, until, accounts)
    assert expected, "the case must find something"
    assert sorted((f.to_dict() for f in found), key=lambda f: f["id"]) == sorted(expected, key=lambda f: f["id"])
    # the grouping evidence too (it is not in the JSON line)
    clues = {f.id: f.clues for f in _in_process(trail, since, until, accounts if ref is ORG_TABLE else ())}
    assert all(f.clues == clues[f.id] and f.clues is not None for f in found)
    assert not scan.summary.errors
    # every row the SQL returned was a root record the detectors judge: the filter is the detectors' own
    assert scan.summary.records >= len(found)


def test_the_filter_is_tight_the_window_exact_and_unreadable_times_kept(trail):
    since, until = _utc("2026-03-02T12:00:00Z"), _utc("2026-03-04T12:00:00Z")
    found, scan, _ = _athena(trail, ACCOUNT_TABLE, since, until)
    ids = {f.event_id for f in found}
    assert {
        "edge-unreadable-time",
        "edge-no-time",
        "edge-login-as-service-event",
        "edge-root-spaced",
        "edge-until-fraction",
        "edge-since-exact",
        "edge-aed-as-text",
        "edge-quotes-and-newline",
        "edge-account-from-path",
    } <= ids
    assert not {"edge-service-event-lower", "edge-service-acting", "edge-after-until", "edge-before-since"} & ids
    # only rows that are findings (or unreadable root records) come back: none is judged and dropped
    assert scan.summary.records == len(found)
    by_id = {f.event_id: f for f in found}
    assert by_id["edge-account-from-path"].account_id == trail["archive"].accounts[0]
    assert by_id["edge-aed-as-text"].mfa_used is True
    assert by_id["edge-quotes-and-newline"].user_agent == 'curl/8 "quoted", with comma\nand a newline'


def test_a_long_window_is_one_query_per_month_reading_each_delivery_day_once(trail):
    since, until = _utc("2026-02-01T00:00:00Z"), _utc("2026-11-30T00:00:00Z")
    found, scan, engine = _athena(trail, ORG_TABLE, since, until, trail["accounts"])
    assert len(engine.queries) == 10  # February to November, plus a day each side for late delivery
    days = [sql.split('"timestamp" BETWEEN ')[1].split("\n")[0] for sql in engine.queries]
    assert days[0] == "'2026/01/31' AND '2026/02/28'" and days[1] == "'2026/03/01' AND '2026/03/31'"
    assert days[-1] == "'2026/11/01' AND '2026/12/01'"
    assert len({f.id for f in found}) == len(found)


def test_the_table_name_and_accounts_are_the_only_user_values_and_arrive_validated(trail):
    found, _, engine = _athena(
        trail, ORG_TABLE, _utc("2026-03-02T12:00:00Z"), _utc("2026-03-04T12:00:00Z"), trail["accounts"][:2]
    )
    (sql,) = engine.queries
    assert 'FROM "db"."cloudtrail"' in sql
    assert f"\"account\" IN ('{trail['accounts'][0]}', '{trail['accounts'][1]}')" in sql
    assert {f.account_id for f in found} <= set(trail["accounts"][:2])
