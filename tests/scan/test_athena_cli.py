"""`rootcheck scan --athena`, run as the installed console script against moto on 127.0.0.1.

The table is in moto's Glue catalog (AWS's DDL), the query results are seeded through moto's
Athena API (moto writes them to the workgroup's S3 result location as Athena's CSV), and a
loopback pass-through (`aws_proxy.py`) records the calls and plays what moto cannot: a query
that runs and scans, fails, or is cancelled, and AccessDenied. The seeded rows are what the
planned SQL returns on DuckDB over the example archive, so the output can be compared with
`rootcheck scan --events examples/cloudtrail`.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import urllib.request
from datetime import datetime
from pathlib import Path

import boto3
import pytest

from bot.scan.athena import layout, parse_table_ref, plan
from bot.timeutil import utcnow
from tests.conftest import json_lines
from tests.scan.athena_fixtures import DuckDBEngine, archive_rows, glue_table, load_duckdb
from tests.scan.aws_proxy import AwsProxy

duckdb = pytest.importorskip("duckdb")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cloudtrail"
WINDOW = ["--since", "2026-11-26T00:00:00Z", "--until", "2026-11-28T00:00:00Z"]
EXAMPLE_ACCOUNTS = ("111122223333", "444455556666")
# One moto Region per test: moto keeps seeded Athena results in one queue per account and Region.
_REGIONS = itertools.cycle(
    (
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-central-1",
        "eu-north-1",
        "ap-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ca-central-1",
        "sa-east-1",
        "ap-northeast-3",
    )
)
_names = itertools.count(1)


@pytest.fixture(scope="module")
def examples_db(tmp_path_factory):
    """The example archive as an organization trail table in DuckDB: what Athena would answer."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    load_duckdb(con, archive_rows(EXAMPLES, "org-trail"), tmp_path_factory.mktemp("duckdb"), table="t")
    return con


class Stage:
    """One test's AWS: a Glue table, a workgroup with a result location, and the CLI's environment."""

    def __init__(self, moto: str, proxy: AwsProxy, org: bool = True):
        number = next(_names)
        self.moto, self.proxy, self.region = moto, proxy, next(_REGIONS)
        self.database, self.table, self.workgroup = f"trail{number}", "cloudtrail", f"rootcheck{number}"
        self.bucket = f"athena-results-{number}"
        self.location = f"s3://{self.bucket}/rootcheck/"
        proxy.result_location = self.location
        clients = {
            name: boto3.client(
                name,
                endpoint_url=moto,
                region_name=self.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            for name in ("glue", "athena", "s3")
        }
        clients["s3"].create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
        clients["glue"].create_database(DatabaseInput={"Name": self.database})
        self.table_input = glue_table(self.table, "s3://org-trail/AWSLogs/o-exampleorg1/", org=org)
        clients["glue"].create_table(DatabaseName=self.database, TableInput=self.table_input)
        clients["athena"].create_work_group(
            Name=self.workgroup, Configuration={"ResultConfiguration": {"OutputLocation": self.location}}
        )
        self.s3 = clients["s3"]
        self.env = {
            "AWS_ENDPOINT_URL": proxy.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
        }

    @property
    def name(self) -> str:
        return f"{self.workgroup}/{self.database}.{self.table}"

    def planned(self, args: list[str], accounts=EXAMPLE_ACCOUNTS) -> list[str]:
        """The SQL the command will send for this window (the test's own plan, from the same table)."""
        since, until = (datetime.fromisoformat(args[i + 1].replace("Z", "+00:00")) for i in (0, 2))
        table = layout(dict(self.table_input, DatabaseName=self.database))
        return [
            q.sql
            for q in plan(parse_table_ref(self.name), table, since, until, tuple(sorted(accounts)), utcnow().date())
        ]

    def seed(self, con, queries: list[str]) -> list[str]:
        """Queue each query's rows (DuckDB's answer) as moto's Athena results; the expected CSVs."""
        csvs, results = [], []
        for sql in queries:
            engine = DuckDBEngine(con)
            query_id = engine.start(sql.replace(f'"{self.database}"."{self.table}"', '"db"."t"'), "db")
            header, rows = engine.rows[query_id]
            csvs.append(engine.files[query_id])
            results.append({"rows": [_moto_row(row) for row in [header, *rows]], "column_info": []})
        request = urllib.request.Request(
            f"{self.moto}/moto-api/static/athena/query-results",
            method="POST",
            data=json.dumps({"region": self.region, "results": results}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as answer:
            assert answer.status == 201
        return csvs

    def written(self) -> list[str]:
        """The results files moto wrote, oldest first."""
        objects = self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return [
            self.s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read().decode()
            for o in sorted(objects, key=lambda o: o["LastModified"])
        ]


def _moto_row(values) -> dict:
    """A row for moto's result queue. moto quotes each value without doubling the quotes inside it
    (Athena doubles them): they are doubled here, so the file moto writes is byte for byte Athena's
    (the tests compare it with `athena_csv`). No value is the NULL moto writes as an empty field."""
    return {"Data": [{} if value is None else {"VarCharValue": str(value).replace('"', '""')} for value in values]}


@pytest.fixture
def aws(moto_server):
    with AwsProxy(moto_server) as proxy:
        yield proxy


def _accounts(*accounts):
    return [arg for account in accounts for arg in ("--account", account)]


def _run(run_rootcheck, stage, *args):
    result = run_rootcheck("scan", "--athena", stage.name, *args, env=stage.env)
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr, stderr
    return result, stderr


# --- the happy path ----------------------------------------------------------------------------


def test_same_findings_as_the_file_scan_and_the_call_sequence(run_rootcheck, aws, moto_server, examples_db):
    stage = Stage(moto_server, aws)
    queries = stage.planned(WINDOW)
    expected_csv = stage.seed(examples_db, queries)
    result, stderr = _run(run_rootcheck, stage, *WINDOW, *_accounts(*EXAMPLE_ACCOUNTS), "--format", "json")
    files = run_rootcheck("scan", "--events", str(EXAMPLES), *WINDOW, "--format", "json")
    assert result.returncode == files.returncode == 1, stderr
    assert json_lines(result.stdout) == json_lines(files.stdout) and len(json_lines(result.stdout)) == 3
    assert stage.written() == expected_csv  # what was streamed is Athena's CSV format
    (start,) = aws.requests("AmazonAthena.StartQueryExecution")
    query_id = aws.requests("AmazonAthena.GetQueryExecution")[0]["QueryExecutionId"]
    assert aws.operations() == [
        "AWSGlue.GetTable",
        "AmazonAthena.StartQueryExecution",
        "AmazonAthena.GetQueryExecution",
        f"S3 GET /{stage.bucket}/rootcheck/{query_id}.csv",
    ]
    assert start["QueryString"] == queries[0] and start["WorkGroup"] == stage.workgroup
    assert start["QueryExecutionContext"] == {"Database": stage.database, "Catalog": "AwsDataCatalog"}
    assert not aws.requests("AmazonAthena.GetQueryResults")  # streamed from S3, not paged
    assert "athena: query 1 of 1 (delivery days 2026-11-25 to 2026-11-29): SUCCEEDED" in stderr
    assert "athena: ran 1 of 1 query, 0 B scanned, about $0.0001 at $5/TB" in stderr
    assert "rootcheck: read 1 file(s), 3 record(s)" in stderr


def test_a_window_over_two_months_is_two_queries_and_an_empty_result_exits_0(
    run_rootcheck, aws, moto_server, examples_db
):
    stage = Stage(moto_server, aws)
    window = ["--since", "2026-10-20T00:00:00Z", "--until", "2026-11-27T09:00:00Z"]
    queries = stage.planned(window, accounts=("111122223333",))
    assert len(queries) == 2
    stage.seed(examples_db, queries)
    result, stderr = _run(run_rootcheck, stage, *window, *_accounts("111122223333"), "--format", "table")
    assert result.returncode == 1, stderr
    assert [r["QueryString"] for r in aws.requests("AmazonAthena.StartQueryExecution")] == queries
    files = run_rootcheck("scan", "--events", str(EXAMPLES), *window, *_accounts("111122223333"), "--format", "table")
    assert result.stdout == files.stdout and b"root_console_login" in files.stdout  # the file scan's very table
    assert "athena: ran 2 of 2 queries" in stderr

    empty = Stage(moto_server, aws)
    quiet = ["--since", "2026-10-20T00:00:00Z", "--until", "2026-10-20T12:00:00Z"]
    empty.seed(examples_db, empty.planned(quiet, accounts=("111122223333",)))
    result, stderr = _run(run_rootcheck, empty, *quiet, *_accounts("111122223333"), "--format", "json")
    assert (result.returncode, result.stdout) == (0, b""), stderr
    assert "no findings" in stderr


# --- refused before any AWS call ---------------------------------------------------------------

HOSTILE_TABLES = [
    "db.t'; DROP TABLE x; --",
    "db.t--",
    'db."t"',
    "db.t;",
    "dβ.t",
    "db.t\n",
    "db",
    "db.t.u",
    "wg/db.t x",
    "db.t /*",
    "ｄｂ.t",
]
HOSTILE_ACCOUNTS = ["111122223333'", "11112222333;", "111122223333--", "١١١١٢٢٢٢٣٣٣٣", "111122223333\n", "' OR '1'='1"]


@pytest.mark.parametrize("name", HOSTILE_TABLES)
def test_a_hostile_table_name_is_a_usage_error_before_any_call(run_rootcheck, aws, name):
    result = run_rootcheck(
        "scan",
        "--athena",
        name,
        "--account",
        "111122223333",
        *WINDOW,
        env={"AWS_ENDPOINT_URL": aws.url, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert result.returncode == 2 and result.stdout == b""
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith("rootcheck: --athena must be [WORKGROUP/]DATABASE.TABLE")
    assert aws.calls == []


@pytest.mark.parametrize("account", HOSTILE_ACCOUNTS)
def test_a_hostile_account_is_a_usage_error_before_any_call(run_rootcheck, aws, account):
    result = run_rootcheck(
        "scan",
        "--athena",
        "db.t",
        "--account",
        account,
        *WINDOW,
        env={"AWS_ENDPOINT_URL": aws.url, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert result.returncode == 2 and result.stdout == b""
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith("rootcheck: --account must be a 12-digit account id")
    assert aws.calls == []


@pytest.mark.parametrize(
    "args,message",
    [
        (["--since", "2026-11-01'; --"], "rootcheck: --since: not a duration or ISO 8601 time"),
        (["--events", "x.json"], "rootcheck: --athena reads a table, not files"),
        (["--max-scan-gb", "0"], "rootcheck: --max-scan-gb must be more than 0"),
    ],
)
def test_other_bad_values_are_usage_errors_before_any_call(run_rootcheck, aws, args, message):
    result = run_rootcheck(
        "scan", "--athena", "db.t", *args, env={"AWS_ENDPOINT_URL": aws.url, "AWS_DEFAULT_REGION": "us-east-1"}
    )
    assert result.returncode == 2
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith(message) and aws.calls == []


# --- the table ---------------------------------------------------------------------------------


def test_an_injected_account_partition_needs_account_and_no_query_runs(run_rootcheck, aws, moto_server):
    stage = Stage(moto_server, aws)
    result, stderr = _run(run_rootcheck, stage, *WINDOW)
    assert result.returncode == 2
    (line,) = stderr.splitlines()
    assert (
        line.startswith(
            f"rootcheck: table {stage.database}.cloudtrail takes its `account` partition from the "
            "query (injected projection)"
        )
        and "pass --account ID" in line
    )
    assert aws.operations() == ["AWSGlue.GetTable"]


def test_an_account_trail_table_needs_no_account(run_rootcheck, aws, moto_server, examples_db):
    stage = Stage(moto_server, aws, org=False)
    stage.seed(examples_db, [q for q in stage.planned(WINDOW, accounts=())])
    result, stderr = _run(run_rootcheck, stage, *WINDOW, "--format", "json")
    assert result.returncode == 1, stderr
    assert len(json_lines(result.stdout)) == 3
    assert '"account" IN' not in aws.requests("AmazonAthena.StartQueryExecution")[0]["QueryString"]


def test_an_unknown_table_is_one_line_with_the_fix(run_rootcheck, aws, moto_server):
    stage = Stage(moto_server, aws)
    result = run_rootcheck(
        "scan", "--athena", f"{stage.database}.nope", *_accounts("111122223333"), *WINDOW, env=stage.env
    )
    assert result.returncode == 2
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith(f"rootcheck: table {stage.database}.nope is not in the Glue Data Catalog of {stage.region}")
    assert "rootcheck athena-table" in line
    assert aws.operations() == ["AWSGlue.GetTable"]


@pytest.mark.parametrize(
    "operation,expected",
    [
        (
            "AWSGlue.GetTable",
            "rootcheck: AccessDenied reading table {db}.cloudtrail from the Glue Data Catalog: "
            "not allowed (grant glue:GetTable",
        ),
        (
            "AmazonAthena.StartQueryExecution",
            "error: AccessDenied starting an Athena query: not allowed (grant "
            "athena:StartQueryExecution, athena:GetQueryExecution and "
            "athena:StopQueryExecution on workgroup {workgroup}",
        ),
    ],
)
def test_access_denied_on_glue_or_athena_is_one_line_with_the_permission(
    run_rootcheck, aws, moto_server, operation, expected
):
    stage = Stage(moto_server, aws)
    aws.fail(operation, "AccessDeniedException", "not allowed")
    result, stderr = _run(run_rootcheck, stage, *WINDOW, *_accounts("111122223333"))
    assert result.returncode == 2
    (line,) = [
        line for line in stderr.splitlines() if line.startswith(("rootcheck: ", "error: ")) and "AccessDenied" in line
    ]  # before the queries, the only line; during them, the error line
    assert line.startswith(expected.format(db=stage.database, workgroup=stage.workgroup))
    assert line.endswith("see the Athena policy in deploy/README.md)")


def test_access_denied_on_the_results_bucket_is_one_error_line(run_rootcheck, aws, moto_server):
    stage = Stage(moto_server, aws)
    aws.fail(f"S3 GET /{stage.bucket}/", "AccessDenied", "Access Denied", status=403)
    result, stderr = _run(run_rootcheck, stage, *WINDOW, *_accounts("111122223333"))
    assert result.returncode == 2 and result.stdout == b""
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: AccessDenied reading the results {stage.location}"
        f"{aws.requests('AmazonAthena.GetQueryExecution')[0]['QueryExecutionId']}.csv: Access Denied "
        f"(grant s3:GetObject on {stage.location}* (and kms:Decrypt on its key if the results are "
        "encrypted with KMS); see the Athena policy in deploy/README.md)"
    ]


# --- how a query ends --------------------------------------------------------------------------


def test_a_failed_query_says_athenas_reason_and_the_fix(run_rootcheck, aws, moto_server):
    stage = Stage(moto_server, aws)
    aws.states = [
        {"State": "RUNNING", "scanned": 10**6},
        {
            "State": "FAILED",
            "scanned": 2 * 10**6,
            "StateChangeReason": "Permission denied on S3 path: s3://org-trail/AWSLogs/o-exampleorg1/",
        },
    ]
    result, stderr = _run(run_rootcheck, stage, *WINDOW, *_accounts("111122223333"))
    assert result.returncode == 2
    (error,) = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert (
        "FAILED: Permission denied on S3 path: s3://org-trail/AWSLogs/o-exampleorg1/ (the credentials need "
        "s3:GetObject and s3:ListBucket on the trail bucket" in error
    )
    assert not [name for name in aws.operations() if name.startswith("S3 ")]
    assert "athena: ran 1 of 1 query, 2.00 MB scanned, about $0.0001 at $5/TB" in stderr


def test_a_query_cancelled_by_the_workgroup_cutoff_says_why(run_rootcheck, aws, moto_server):
    stage = Stage(moto_server, aws)
    aws.states = [
        {
            "State": "CANCELLED",
            "scanned": 10**9,
            "StateChangeReason": "Query cancelled: the data scanned exceeded the workgroup's limit",
        }
    ]
    result, stderr = _run(run_rootcheck, stage, *WINDOW, *_accounts("111122223333"))
    assert result.returncode == 2
    (error,) = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert (
        "was cancelled by Athena, not by rootcheck: Query cancelled: the data scanned exceeded the "
        "workgroup's limit (a workgroup's per-query data usage control cancels" in error
    )
    assert not aws.requests("AmazonAthena.StopQueryExecution")


def test_the_scan_cap_stops_the_running_query(run_rootcheck, aws, moto_server):
    stage = Stage(moto_server, aws)
    aws.states = [
        {"State": "QUEUED"},
        {"State": "RUNNING", "scanned": 30 * 10**9},
        {"State": "RUNNING", "scanned": 60 * 10**9},
        {"State": "RUNNING", "scanned": 90 * 10**9},
    ]
    result, stderr = _run(run_rootcheck, stage, *WINDOW, *_accounts("111122223333"), "--max-scan-gb", "50")
    assert result.returncode == 2
    query_id = aws.requests("AmazonAthena.GetQueryExecution")[0]["QueryExecutionId"]
    assert aws.requests("AmazonAthena.StopQueryExecution") == [{"QueryExecutionId": query_id}]
    assert len(aws.requests("AmazonAthena.GetQueryExecution")) == 3  # stopped at the first poll over the cap
    (error,) = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert error.endswith(
        f"stopped Athena query {query_id}: the scan had read 60.00 GB (about $0.30), over "
        "--max-scan-gb 50; narrow --since/--until/--account, or raise --max-scan-gb"
    )


def test_ctrl_c_stops_the_running_query(rootcheck_bin, aws, moto_server, tmp_path):
    stage = Stage(moto_server, aws)
    aws.states = [{"State": "RUNNING", "scanned": 10**6}]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROOTCHECK_", "SLACK_"))}
    env.update(stage.env, HOME=str(tmp_path))
    process = subprocess.Popen(
        [rootcheck_bin, "scan", "--athena", stage.name, *WINDOW, "--account", "111122223333"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    aws.running.wait()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate()
    assert process.returncode == 130, stderr.decode()
    query_id = aws.requests("AmazonAthena.GetQueryExecution")[0]["QueryExecutionId"]
    assert aws.requests("AmazonAthena.StopQueryExecution") == [{"QueryExecutionId": query_id}]
    assert f"rootcheck: interrupted: stopped Athena query {query_id}" in stderr.decode()
    assert "Traceback" not in stderr.decode() and stdout == b""


def test_no_region_is_one_line(run_rootcheck, aws):
    result = run_rootcheck("scan", "--athena", "db.t", *WINDOW, env={"AWS_ENDPOINT_URL": aws.url})
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [
        "rootcheck: no AWS Region: set AWS_DEFAULT_REGION (or the region of your AWS_PROFILE) to the Region of "
        "the Athena table"
    ]
