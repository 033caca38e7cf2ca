"""`rootcheck athena-table`: AWS's CloudTrail DDL with partition projection, for a trail's bucket."""

from __future__ import annotations

import pytest

from bot.scan.athena import layout
from bot.scan.athena_table import COLUMNS, DEFAULT_REGIONS, create_table, trail

sqlglot = pytest.importorskip("sqlglot")


def _parsed(ddl: str) -> tuple[list[tuple[str, str]], dict[str, str], list[str], str]:
    """(columns with their types as Glue writes them, table properties, partition keys, location)."""
    statement = sqlglot.parse_one(ddl, read="hive")
    columns = [(c.name, c.args["kind"].sql("hive").lower().replace(" ", "")) for c in statement.this.expressions]
    properties = {}
    keys, location = [], None
    for prop in statement.args["properties"].expressions:
        if isinstance(prop, sqlglot.exp.PartitionedByProperty):
            keys = [c.name for c in prop.this.expressions]
        elif isinstance(prop, sqlglot.exp.LocationProperty):
            location = prop.this.name
        elif type(prop) is sqlglot.exp.Property:
            properties[prop.name] = prop.args["value"].name
    return columns, properties, keys, location


def test_organization_table_injects_account_enumerates_regions_and_projects_the_date(run_rootcheck):
    result = run_rootcheck(
        "athena-table",
        "--bucket",
        "s3://org-trail-logs/central/",
        "--org",
        "o-a1b2c3d4e5",
        "--regions",
        "us-east-1,eu-west-1",
    )
    assert result.returncode == 0, result.stderr
    columns, properties, keys, location = _parsed(result.stdout.decode())
    assert columns == list(COLUMNS)
    assert keys == ["account", "region", "timestamp"]
    assert location == "s3://org-trail-logs/central/AWSLogs/o-a1b2c3d4e5/"
    assert properties == {
        "projection.enabled": "true",
        "projection.account.type": "injected",
        "projection.region.type": "enum",
        "projection.region.values": "us-east-1,eu-west-1",
        "projection.timestamp.type": "date",
        "projection.timestamp.format": "yyyy/MM/dd",
        "projection.timestamp.interval": "1",
        "projection.timestamp.interval.unit": "DAYS",
        "projection.timestamp.range": "2013/11/01,NOW",
        "storage.location.template": "s3://org-trail-logs/central/AWSLogs/o-a1b2c3d4e5/${account}/CloudTrail/${region}/${timestamp}",
    }
    assert "ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'" in result.stdout.decode()
    assert "STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'" in result.stdout.decode()
    assert result.stderr.decode().startswith("rootcheck: run this in Athena")


def test_account_trail_table_is_aws_table_for_one_region_and_enumerates_several():
    columns, properties, keys, location = _parsed(
        create_table(trail("s3://my-trail", None, "111122223333", "us-east-1"))
    )
    assert keys == ["timestamp"] and location == "s3://my-trail/AWSLogs/111122223333/CloudTrail/us-east-1/"
    assert properties["storage.location.template"] == (
        "s3://my-trail/AWSLogs/111122223333/CloudTrail/us-east-1/${timestamp}"
    )
    _, properties, keys, _ = _parsed(create_table(trail("s3://my-trail", None, "111122223333", None)))
    assert keys == ["region", "timestamp"] and properties["projection.region.values"] == ",".join(DEFAULT_REGIONS)


def test_an_account_trail_without_account_takes_accounts_at_query_time(run_rootcheck):
    result = run_rootcheck("athena-table", "--bucket", "s3://my-trail")  # the interface's plain form
    assert result.returncode == 0, result.stderr
    _, properties, keys, location = _parsed(result.stdout.decode())
    assert keys == ["account", "region", "timestamp"] and location == "s3://my-trail/AWSLogs/"
    assert properties["projection.account.type"] == "injected"
    assert (
        properties["storage.location.template"] == "s3://my-trail/AWSLogs/${account}/CloudTrail/${region}/${timestamp}"
    )
    assert "--account ID" in result.stderr.decode()


def test_the_printed_table_is_one_scan_athena_reads():
    """The DDL's columns, partitions and properties, as Glue would store them, lay out a scannable table."""
    for org, account in (("o-a1b2c3d4e5", None), (None, "111122223333"), (None, None)):
        columns, properties, keys, _ = _parsed(create_table(trail("s3://my-trail", org, account, None)))
        table = {
            "Name": "t",
            "DatabaseName": "db",
            "Parameters": properties,
            "PartitionKeys": [{"Name": key, "Type": "string"} for key in keys],
            "StorageDescriptor": {"Columns": [{"Name": n, "Type": t} for n, t in columns]},
        }
        found = layout(table)
        assert (found.date_key, found.date_format, found.account_injected) == ("timestamp", "%Y/%m/%d", not account)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--bucket", "my-trail", "--org", "o-a1b2c3d4e5"], "--bucket must be s3://BUCKET[/PREFIX]"),
        (["--bucket", "s3://My_Trail", "--org", "o-a1b2c3d4e5"], "is not an S3 bucket name"),
        (["--bucket", "s3://my-trail/x'y", "--org", "o-a1b2c3d4e5"], "the prefix"),
        (["--bucket", "s3://my-trail/AWSLogs/o-a1b2c3d4e5", "--org", "o-a1b2c3d4e5"], "without AWSLogs/"),
        (["--bucket", "s3://my-trail", "--org", "o-A1'"], "--org must be an organization id"),
        (["--bucket", "s3://my-trail", "--account", "11112222333'"], "--account must be a 12-digit account id"),
        (["--bucket", "s3://my-trail", "--account", "١١١١٢٢٢٢٣٣٣٣"], "--account must be a 12-digit account id"),
        (
            ["--bucket", "s3://my-trail", "--org", "o-a1b2c3d4e5", "--account", "111122223333"],
            "takes accounts at query",
        ),
        (["--bucket", "s3://my-trail", "--org", "o-a1b2c3d4e5", "--regions", "us-east-1,moon-1'"], "--regions must be"),
        (["--bucket", "s3://my-trail", "--org", "o-a1b2c3d4e5", "--regions", ""], "--regions must be"),
    ],
)
def test_bad_values_are_usage_errors(run_rootcheck, args, message):
    result = run_rootcheck("athena-table", *args)
    assert result.returncode == 2 and result.stdout == b""
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith("rootcheck: ") and message in line
