"""`rootcheck athena-table`: the `CREATE EXTERNAL TABLE` for a CloudTrail trail, with partition projection.

The columns are AWS's documented CloudTrail DDL for Athena ("Create the table for CloudTrail logs
in Athena using partition projection"), kept here once: the DDL is printed from them, and the
tests build their Glue and DuckDB tables from them, so what `scan --athena` is tested against is
what users create. Pure: the values are validated here and nothing is called.

- Account trail with `--account` and one Region: AWS's table, partitioned by `timestamp` (a
  projected date, `yyyy/MM/dd`) only, over `AWSLogs/<account>/CloudTrail/<region>/`. With several
  Regions (the default), `region` is added as an enumerated partition, so one table covers them all;
  without `--account`, `account` is injected, so one table covers every account writing there.
- Organization trail: `account` injected (any account of the organization, named at query time),
  `region` enumerated, `timestamp` a projected date, over `AWSLogs/<o-…>/<account>/CloudTrail/<region>/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# AWS's documented columns, in AWS's order, as Glue stores their types.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("eventversion", "string"),
    (
        "useridentity",
        "struct<type:string,principalid:string,arn:string,accountid:string,invokedby:string,"
        "accesskeyid:string,username:string,onbehalfof:struct<userid:string,identitystorearn:string>,"
        "sessioncontext:struct<attributes:struct<mfaauthenticated:string,creationdate:string>,"
        "sessionissuer:struct<type:string,principalid:string,arn:string,accountid:string,"
        "username:string>,ec2roledelivery:string,webidfederationdata:struct<federatedprovider:string,"
        "attributes:map<string,string>>>>",
    ),
    ("eventtime", "string"),
    ("eventsource", "string"),
    ("eventname", "string"),
    ("awsregion", "string"),
    ("sourceipaddress", "string"),
    ("useragent", "string"),
    ("errorcode", "string"),
    ("errormessage", "string"),
    ("requestparameters", "string"),
    ("responseelements", "string"),
    ("additionaleventdata", "string"),
    ("requestid", "string"),
    ("eventid", "string"),
    ("readonly", "string"),
    ("resources", "array<struct<arn:string,accountid:string,type:string>>"),
    ("eventtype", "string"),
    ("apiversion", "string"),
    ("recipientaccountid", "string"),
    ("serviceeventdetails", "string"),
    ("sharedeventid", "string"),
    ("vpcendpointid", "string"),
    ("vpcendpointaccountid", "string"),
    ("eventcategory", "string"),
    ("addendum", "struct<reason:string,updatedfields:string,originalrequestid:string,originaleventid:string>"),
    ("sessioncredentialfromconsole", "string"),
    ("edgedevicedetails", "string"),
    ("tlsdetails", "struct<tlsversion:string,ciphersuite:string,clientprovidedhostheader:string>"),
)
SERDE = "org.apache.hive.hcatalog.data.JsonSerDe"
INPUT_FORMAT = "com.amazon.emr.cloudtrail.CloudTrailInputFormat"
OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
FIRST_DAY = "2013/11/01"  # CloudTrail's launch: no trail is older, and a range costs nothing unqueried
# The Regions every account has enabled by default; opt-in Regions are named with --regions.
DEFAULT_REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "sa-east-1",
)

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", re.ASCII)
_PREFIX = re.compile(r"(?:[A-Za-z0-9!_.()-]+/)*", re.ASCII)  # no quote: it goes into the DDL's literals
_ORG = re.compile(r"o-[a-z0-9]{10,32}", re.ASCII)
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}", re.ASCII)
_ACCOUNT = re.compile(r"[0-9]{12}", re.ASCII)


@dataclass(frozen=True)
class Trail:
    """Where a trail writes (validated): bucket and optional prefix, org or account, Regions."""

    bucket: str
    prefix: str  # "" or "some/prefix/"
    org: str | None
    account: str | None
    regions: tuple[str, ...]

    @property
    def root(self) -> str:
        """`AWSLogs/`, or the organization's folder in it, where the accounts' folders are."""
        return f"s3://{self.bucket}/{self.prefix}AWSLogs/" + (f"{self.org}/" if self.org else "")


def trail(bucket: str, org: str | None, account: str | None, regions: str | None) -> Trail:
    """Validate `athena-table`'s values; ValueError names the flag and what is expected."""
    if not bucket.startswith("s3://"):
        raise ValueError(f"--bucket must be s3://BUCKET[/PREFIX], got {bucket!r}")
    name, _, prefix = bucket[len("s3://") :].partition("/")
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    if not _BUCKET.fullmatch(name) or ".." in name:
        raise ValueError(f"--bucket: {name!r} is not an S3 bucket name (3-63 of a-z, 0-9, '.', '-')")
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"--bucket: the prefix {prefix!r} has characters a trail prefix cannot have")
    if prefix.endswith("AWSLogs/") or "/AWSLogs/" in f"/{prefix}":
        raise ValueError("--bucket: give the bucket (and the trail's own prefix), without AWSLogs/…")
    if org is not None and not _ORG.fullmatch(org):
        raise ValueError(f"--org must be an organization id like o-a1b2c3d4e5, got {org!r}")
    if org is not None and account is not None:
        raise ValueError(
            "--account: an organization trail's table takes accounts at query time "
            "(scan --athena … --account ID); leave it out here"
        )
    if account is not None and not _ACCOUNT.fullmatch(account):
        raise ValueError(f"--account must be a 12-digit account id, got {account!r}")
    names = tuple(dict.fromkeys(r.strip() for r in regions.split(","))) if regions is not None else DEFAULT_REGIONS
    bad = [r for r in names if not _REGION.fullmatch(r)]
    if bad or not names:
        raise ValueError(f"--regions must be comma-separated Region names like us-east-1, got {regions!r}")
    return Trail(name, prefix, org, account, names)


def create_table(trail: Trail, table: str = "cloudtrail_logs_pp") -> str:
    """The DDL: AWS's columns, JSON SerDe, CloudTrail input format, and partition projection."""
    keys: list[str] = []
    properties = [("projection.enabled", "true")]
    template = trail.root
    if trail.account:
        template += f"{trail.account}/CloudTrail/"
    else:
        keys.append("account")
        properties.append(("projection.account.type", "injected"))
        template += "${account}/CloudTrail/"
    if trail.org or len(trail.regions) > 1:
        keys.append("region")
        properties += [("projection.region.type", "enum"), ("projection.region.values", ",".join(trail.regions))]
        template += "${region}/"
    else:
        template += f"{trail.regions[0]}/"
    keys.append("timestamp")
    properties += [
        ("projection.timestamp.type", "date"),
        ("projection.timestamp.format", "yyyy/MM/dd"),
        ("projection.timestamp.interval", "1"),
        ("projection.timestamp.interval.unit", "DAYS"),
        ("projection.timestamp.range", f"{FIRST_DAY},NOW"),
        ("storage.location.template", template + "${timestamp}"),
    ]
    location = template.split("${")[0]
    columns = ",\n".join(f"    {name} {_pretty(parse_type(kind), 4)}" for name, kind in COLUMNS)
    lines = [
        f"CREATE EXTERNAL TABLE {table} (",
        columns,
        ")",
        "PARTITIONED BY (" + ", ".join(f"`{key}` string" for key in keys) + ")",
        f"ROW FORMAT SERDE '{SERDE}'",
        f"STORED AS INPUTFORMAT '{INPUT_FORMAT}'",
        f"OUTPUTFORMAT '{OUTPUT_FORMAT}'",
        f"LOCATION '{location}'",
        "TBLPROPERTIES (",
        ",\n".join(f"    '{key}'='{value}'" for key, value in properties),
        ")",
    ]
    return "\n".join(lines) + "\n"


def parse_type(text: str):
    """A Hive/Glue type string as a tree: `"string"` (any scalar, lowercased), `("struct", ((name,
    tree), ...))` with names lowercased as Athena resolves them, `("array", tree)` or
    `("map", key, value)`.

    Raises ValueError on anything that is not a well-formed type, so a table whose catalog entry
    is odd is reported instead of guessed at.
    """
    tree, rest = _parse(text.replace(" ", "").replace("\n", ""))
    if rest:
        raise ValueError(f"unexpected {rest[:20]!r} in type {text[:60]!r}")
    return tree


def _parse(text: str):
    lowered = text.lower()
    for kind in ("struct<", "array<", "map<"):
        if lowered.startswith(kind):
            return _parse_nested(kind[:-1], text[len(kind) :])
    match = re.match(r"[a-z0-9_]+(?:\([0-9, ]+\))?", lowered)
    if not match:
        raise ValueError(f"not a type: {text[:40]!r}")
    return match.group(0), text[match.end() :]


def _parse_nested(kind: str, text: str):
    items: list = []
    while True:
        if kind == "struct":
            name, colon, text = text.partition(":")
            if not colon or not re.fullmatch(r"[A-Za-z0-9_$]+", name):
                raise ValueError(f"bad struct field {name[:40]!r}")
            sub, text = _parse(text)
            items.append((name.lower(), sub))
        else:
            sub, text = _parse(text)
            items.append(sub)
        if text[:1] == ",":
            text = text[1:]
        elif text[:1] == ">":
            break
        else:
            raise ValueError(f"expected ',' or '>' in {kind} at {text[:20]!r}")
    if kind == "struct":
        return ("struct", tuple(items)), text[1:]
    if kind == "array" and len(items) == 1:
        return ("array", items[0]), text[1:]
    if kind == "map" and len(items) == 2:
        return ("map", items[0], items[1]), text[1:]
    raise ValueError(f"{kind} with {len(items)} type(s)")


def _pretty(tree, indent: int) -> str:
    """A type as AWS lays it out: scalars upper case, one struct field a line, nested ones indented."""
    if isinstance(tree, str):
        return tree.upper()
    if tree[0] == "array":
        return f"ARRAY<{_pretty(tree[1], indent)}>"
    if tree[0] == "map":
        return f"MAP<{_pretty(tree[1], indent)},{_pretty(tree[2], indent)}>"
    pad = " " * (indent + 4)
    inner = ",\n".join(f"{pad}{name}: {_pretty(sub, indent + 4)}" for name, sub in tree[1])
    return f"STRUCT<\n{inner}>"
