"""Drive the AWS stand-in with real boto3 clients over HTTP."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.fakes.aws_standin import (
    CREDENTIAL_REPORT_COLUMNS,
    HUB_ACCOUNT,
    AwsStandIn,
    root_login_record,
    root_report_csv,
)

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fixtures" / "corpus"
PROD, DEV, LOCKED = "222222222222", "333333333333", "444444444444"
ROLE = "arn:aws:iam::{}:role/RootCheckReader"
NO_RETRY = {"mode": "standard", "total_max_attempts": 1}
NOW = datetime.now(UTC).replace(microsecond=0)

# One botocore session for the whole module: it caches the service models, so
# each client costs milliseconds instead of a model load.
_BOTO = boto3.session.Session(botocore_session=botocore.session.get_session())


def client(standin, service, *, region="us-east-1", creds=None, retries=None, **config):
    creds = creds or {"AccessKeyId": standin.hub_access_key, "SecretAccessKey": standin.hub_secret_key}
    return _BOTO.client(
        service,
        endpoint_url=standin.url,
        region_name=region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
        config=Config(retries=retries or {"mode": "standard"}, **config),
    )


def assume(standin, account, external_id="xid-123", **kw):
    sts = client(standin, "sts")
    return sts.assume_role(RoleArn=ROLE.format(account), RoleSessionName="rootcheck", ExternalId=external_id, **kw)[
        "Credentials"
    ]


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def iam_user_record(account, when, name="alice", event="ListBuckets", read_only=True):
    return {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE",
            "userName": name,
            "arn": f"arn:aws:iam::{account}:user/{name}",
            "accountId": account,
            "accessKeyId": "AKIAUSERKEY",
        },
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "s3.amazonaws.com",
        "eventName": event,
        "awsRegion": "us-east-1",
        "readOnly": read_only,
        "eventID": f"user-{name}-{when.timestamp():.0f}",
        "eventType": "AwsApiCall",
        "recipientAccountId": account,
    }


@pytest.fixture
def standin():
    s = AwsStandIn(rate_per_second=None, external_id="xid-123")
    s.start()
    s.add_account(PROD, alias="prod")
    s.add_account(DEV, alias=["dev", "dev-legacy"])
    s.add_account(LOCKED, deny_assume_role=True)
    yield s
    s.stop()


# ----------------------------------------------------------------- CloudTrail


def test_lookup_events_pages_newest_first_and_caps_max_results(standin):
    records = [root_login_record(PROD, NOW - timedelta(minutes=i), event_id=f"ev-{i:03d}") for i in range(120)]
    standin.add_events(PROD, "us-east-1", records[::-1])  # insertion order must not matter
    ct = client(standin, "cloudtrail", creds=assume(standin, PROD))

    pages = list(ct.get_paginator("lookup_events").paginate())
    assert [len(p["Events"]) for p in pages] == [50, 50, 20]
    events = [e for p in pages for e in p["Events"]]
    assert [e["EventId"] for e in events] == [f"ev-{i:03d}" for i in range(120)]
    times = [e["EventTime"] for e in events]
    assert times == sorted(times, reverse=True) and times[0] == NOW
    first = events[0]
    assert first["EventName"] == "ConsoleLogin" and first["Username"] == "root"
    assert first["ReadOnly"] == "false" and first["EventSource"] == "signin.amazonaws.com"
    assert first["Resources"] == []
    assert json.loads(first["CloudTrailEvent"]) == records[0]

    # MaxResults above AWS's maximum of 50 is capped; NextToken is opaque and resumable.
    page = ct.lookup_events(MaxResults=100)
    assert len(page["Events"]) == 50 and page["NextToken"]
    small = ct.lookup_events(MaxResults=7)
    nxt = ct.lookup_events(MaxResults=7, NextToken=small["NextToken"])
    assert [e["EventId"] for e in small["Events"] + nxt["Events"]] == [f"ev-{i:03d}" for i in range(14)]
    with pytest.raises(ClientError) as exc:
        ct.lookup_events(NextToken="not-a-token")
    assert error_code(exc) == "InvalidNextTokenException"


def test_lookup_attribute_filters(standin):
    corpus = {
        name: json.loads((CORPUS / name).read_text())
        for name in (
            "01_root_console_login_success_no_mfa.json",
            "09_root_create_access_key_invokedby_signin.json",
            "07_iam_user_console_login_success_no_mfa.json",
            "16_assumed_role_describe_table.json",
        )
    }
    standin.add_events(PROD, "us-east-1", corpus.values())
    standin.add_events(PROD, "us-east-1", [iam_user_record(PROD, NOW, name="alice")])
    ct = client(standin, "cloudtrail", creds=assume(standin, PROD))

    def lookup(key, value):
        resp = ct.lookup_events(LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}])
        return sorted(json.loads(e["CloudTrailEvent"])["eventID"] for e in resp["Events"])

    def ids(*names):
        return sorted(corpus[n]["eventID"] for n in names)

    assert lookup("Username", "root") == ids(
        "01_root_console_login_success_no_mfa.json", "09_root_create_access_key_invokedby_signin.json"
    )
    iam_user = corpus["07_iam_user_console_login_success_no_mfa.json"]["userIdentity"]["userName"]
    assert lookup("Username", iam_user) == ids("07_iam_user_console_login_success_no_mfa.json")
    assert lookup("Username", "tester") == ids("16_assumed_role_describe_table.json")  # sessionIssuer
    assert lookup("EventName", "ConsoleLogin") == ids(
        "01_root_console_login_success_no_mfa.json", "07_iam_user_console_login_success_no_mfa.json"
    )
    assert lookup("EventSource", "dynamodb.amazonaws.com") == ids("16_assumed_role_describe_table.json")
    assert lookup("ReadOnly", "true") == sorted(
        ids("16_assumed_role_describe_table.json") + [f"user-alice-{NOW.timestamp():.0f}"]
    )
    assert lookup("EventId", corpus["09_root_create_access_key_invokedby_signin.json"]["eventID"]) == ids(
        "09_root_create_access_key_invokedby_signin.json"
    )
    assert lookup("Username", "nobody") == []

    with pytest.raises(ClientError) as exc:
        ct.lookup_events(
            LookupAttributes=[
                {"AttributeKey": "Username", "AttributeValue": "root"},
                {"AttributeKey": "EventName", "AttributeValue": "ConsoleLogin"},
            ]
        )
    assert error_code(exc) == "InvalidLookupAttributesException"


def test_time_window_is_inclusive_and_validated(standin):
    standin.add_events(
        PROD, "us-east-1", [root_login_record(PROD, NOW - timedelta(hours=h), event_id=f"h{h}") for h in range(10)]
    )
    ct = client(standin, "cloudtrail", creds=assume(standin, PROD))

    resp = ct.lookup_events(StartTime=NOW - timedelta(hours=5), EndTime=NOW - timedelta(hours=2))
    assert [e["EventId"] for e in resp["Events"]] == ["h2", "h3", "h4", "h5"]
    resp = ct.lookup_events(StartTime=NOW - timedelta(hours=1, minutes=30))
    assert [e["EventId"] for e in resp["Events"]] == ["h0", "h1"]
    with pytest.raises(ClientError) as exc:
        ct.lookup_events(StartTime=NOW, EndTime=NOW - timedelta(hours=1))
    assert error_code(exc) == "InvalidTimeRangeException"


def test_throttling_is_visible_without_retries():
    with AwsStandIn(rate_per_second=2.0) as s:
        s.add_account(PROD)
        s.add_events(PROD, "us-east-1", [root_login_record(PROD, NOW)])
        creds = {"AccessKeyId": s.hub_access_key, "SecretAccessKey": s.hub_secret_key}
        role = client(s, "sts").assume_role(RoleArn=ROLE.format(PROD), RoleSessionName="rc")["Credentials"]
        # NB: in botocore's Config, retries={"max_attempts": 1} means ONE RETRY (2 attempts);
        # total_max_attempts=1 is what really turns retries off.
        ct = client(s, "cloudtrail", creds=role, retries=NO_RETRY)

        ct.lookup_events()
        ct.lookup_events()
        with pytest.raises(ClientError) as exc:
            ct.lookup_events()
        assert error_code(exc) == "ThrottlingException"
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert exc.value.response["Error"]["Message"] == "Rate exceeded"
        assert exc.value.response["ResponseMetadata"]["RetryAttempts"] == 0

        # The limit is per (account, region): another region and the hub account are unaffected.
        client(s, "cloudtrail", region="us-west-2", creds=role, retries=NO_RETRY).lookup_events()
        client(s, "cloudtrail", creds=creds, retries=NO_RETRY).lookup_events()

        assert s.stats.throttled[(PROD, "us-east-1")] == 1
        assert s.stats.max_rate[(PROD, "us-east-1")] == 3
        assert s.stats.count("cloudtrail", "LookupEvents", PROD) == 4
        time.sleep(1.05)  # the window slides: allowed again
        assert ct.lookup_events()["Events"][0]["Username"] == "root"


def test_standard_retries_absorb_throttling():
    with AwsStandIn(rate_per_second=2.0) as s:
        s.add_account(PROD)
        # Standard mode retries ThrottlingException, but with its default 3 attempts a burst
        # at 2 req/s still fails now and then (backoff is rand(0,1) s, then rand(0,2) s).
        ct = client(s, "cloudtrail", retries={"mode": "standard", "total_max_attempts": 10})
        responses = [ct.lookup_events() for _ in range(3)]  # the 3rd must wait ~1 s
        assert all(r["Events"] == [] for r in responses)
        assert sum(r["ResponseMetadata"]["RetryAttempts"] for r in responses) >= 1
        assert s.stats.throttled[(HUB_ACCOUNT, "us-east-1")] >= 1
        assert s.stats.max_rate[(HUB_ACCOUNT, "us-east-1")] >= 3


# ----------------------------------------------------------------- STS


def test_assume_role_checks_external_id_and_denials(standin):
    sts = client(standin, "sts")
    me = sts.get_caller_identity()
    assert (me["Account"], me["Arn"]) == (HUB_ACCOUNT, f"arn:aws:iam::{HUB_ACCOUNT}:user/rootcheck-hub")

    creds = assume(standin, PROD)
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    lifetime = (creds["Expiration"] - datetime.now(UTC)).total_seconds()
    assert 3590 < lifetime <= 3600
    who = client(standin, "sts", creds=creds).get_caller_identity()
    assert who["Account"] == PROD
    assert who["Arn"] == f"arn:aws:sts::{PROD}:assumed-role/RootCheckReader/rootcheck"

    for bad in ("wrong", None):
        kwargs = {"RoleArn": ROLE.format(PROD), "RoleSessionName": "rootcheck"}
        if bad:
            kwargs["ExternalId"] = bad
        with pytest.raises(ClientError) as exc:
            sts.assume_role(**kwargs)
        assert error_code(exc) == "AccessDenied"
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    with pytest.raises(ClientError) as exc:
        assume(standin, LOCKED)
    assert error_code(exc) == "AccessDenied"
    assert (
        f"is not authorized to perform: sts:AssumeRole on resource: {ROLE.format(LOCKED)}"
        in exc.value.response["Error"]["Message"]
    )
    with pytest.raises(ClientError) as exc:
        assume(standin, "999999999999")  # no such account
    assert error_code(exc) == "AccessDenied"

    assert standin.stats.assume_role[PROD] == 3 and standin.stats.assume_role_ok[PROD] == 1
    assert standin.stats.assume_role[LOCKED] == 1 and standin.stats.assume_role_ok[LOCKED] == 0


def test_assumed_credentials_reach_the_right_account(standin):
    standin.add_events(PROD, "us-east-1", [root_login_record(PROD, NOW, event_id="prod-login")])
    standin.add_events(DEV, "us-east-1", [root_login_record(DEV, NOW, event_id="dev-login")])
    standin.add_events(DEV, "eu-west-1", [root_login_record(DEV, NOW, event_id="dev-eu")])

    for account, region, expected in (
        (PROD, "us-east-1", ["prod-login"]),
        (DEV, "us-east-1", ["dev-login"]),
        (DEV, "eu-west-1", ["dev-eu"]),
        (PROD, "eu-west-1", []),
    ):
        ct = client(standin, "cloudtrail", region=region, creds=assume(standin, account))
        assert [e["EventId"] for e in ct.lookup_events()["Events"]] == expected
    assert standin.stats.count("cloudtrail", "LookupEvents", DEV) == 2


def test_unknown_and_expired_keys():
    with AwsStandIn(rate_per_second=None, credential_lifetime=0.3) as s:
        s.add_account(PROD)
        bogus = {"AccessKeyId": "AKIANOSUCHKEY0000000", "SecretAccessKey": "x"}
        with pytest.raises(ClientError) as exc:
            client(s, "sts", creds=bogus).get_caller_identity()
        assert error_code(exc) == "InvalidClientTokenId"
        with pytest.raises(ClientError) as exc:
            client(s, "cloudtrail", creds=bogus).lookup_events()
        assert error_code(exc) == "UnrecognizedClientException"

        creds = client(s, "sts").assume_role(RoleArn=ROLE.format(PROD), RoleSessionName="rc")["Credentials"]
        ct = client(s, "cloudtrail", creds=creds, retries=NO_RETRY)
        ct.lookup_events()
        time.sleep(0.35)
        with pytest.raises(ClientError) as exc:
            ct.lookup_events()
        assert error_code(exc) == "ExpiredTokenException"


def test_refreshable_credentials_from_env_and_role_profile(tmp_path, monkeypatch):
    with AwsStandIn(rate_per_second=None, credential_lifetime=2, external_id="xid-9") as s:
        s.add_events(PROD, "us-east-1", [root_login_record(PROD, NOW, event_id="prod-login")])
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
            monkeypatch.delenv(key, raising=False)
        for key, value in s.env().items():
            monkeypatch.setenv(key, value)
        config = tmp_path / "config"
        config.write_text(
            f"[profile prod]\nrole_arn = {ROLE.format(PROD)}\ncredential_source = Environment\nexternal_id = xid-9\n"
        )
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))

        session = boto3.session.Session(profile_name="prod")  # endpoints come from AWS_ENDPOINT_URL_*
        ct = session.client("cloudtrail")
        assert ct.meta.endpoint_url == s.url
        for _ in range(3):
            assert [e["EventId"] for e in ct.lookup_events()["Events"]] == ["prod-login"]
        # 2 s credentials are inside botocore's refresh window: each call assumes the role again.
        assert s.stats.assume_role_ok[PROD] >= 3
        assert session.client("sts").get_caller_identity()["Account"] == PROD


# ----------------------------------------------------------------- IAM


def test_root_report_csv_builder():
    rows = list(csv.DictReader(io.StringIO(root_report_csv(PROD))))
    assert tuple(rows[0]) == CREDENTIAL_REPORT_COLUMNS and len(CREDENTIAL_REPORT_COLUMNS) == 22
    root = rows[0]
    assert root["user"] == "<root_account>" and root["arn"] == f"arn:aws:iam::{PROD}:root"
    assert (root["password_enabled"], root["password_last_used"], root["mfa_active"]) == (
        "not_supported",
        "no_information",
        "true",
    )
    assert root["access_key_1_active"] == root["access_key_2_active"] == "false"

    used = datetime(2026, 8, 20, 9, 14, 2, tzinfo=UTC)
    risky = next(
        csv.DictReader(
            io.StringIO(
                root_report_csv(
                    PROD,
                    password_last_used=used,
                    mfa_active=False,
                    key1_active=True,
                    extra_rows=[{"user": "ci", "arn": f"arn:aws:iam::{PROD}:user/ci"}],
                )
            )
        )
    )
    assert (risky["password_last_used"], risky["mfa_active"], risky["access_key_1_active"]) == (
        "2026-08-20T09:14:02+00:00",
        "false",
        "true",
    )


def test_credential_report_lifecycle():
    report = root_report_csv(PROD, mfa_active=False)
    with AwsStandIn(rate_per_second=None, report_ready_after=3) as s:
        s.add_account(PROD, report_csv=report)
        s.add_account(DEV, report_state="expired")
        iam = client(
            s, "iam", creds=client(s, "sts").assume_role(RoleArn=ROLE.format(PROD), RoleSessionName="rc")["Credentials"]
        )

        with pytest.raises(ClientError) as exc:
            iam.get_credential_report()
        assert error_code(exc) == "ReportNotPresent"
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
        assert iam.generate_credential_report()["State"] == "STARTED"
        with pytest.raises(ClientError) as exc:
            iam.get_credential_report()
        assert error_code(exc) == "ReportInProgress"
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert iam.generate_credential_report()["State"] == "INPROGRESS"
        assert iam.generate_credential_report()["State"] == "COMPLETE"
        got = iam.get_credential_report()
        assert got["Content"] == report.encode()  # botocore base64-decodes the blob
        assert got["ReportFormat"] == "text/csv"
        assert abs((got["GeneratedTime"] - datetime.now(UTC)).total_seconds()) < 5
        assert iam.generate_credential_report()["State"] == "COMPLETE"  # a fresh report is kept

        dev = client(
            s, "iam", creds=client(s, "sts").assume_role(RoleArn=ROLE.format(DEV), RoleSessionName="rc")["Credentials"]
        )
        with pytest.raises(ClientError) as exc:
            dev.get_credential_report()
        assert error_code(exc) == "ReportExpired"
        assert dev.generate_credential_report()["State"] == "STARTED"
        assert s.stats.count("iam", "GenerateCredentialReport", PROD) == 4


def test_list_account_aliases(standin):
    aliases = {
        acct: client(standin, "iam", creds=assume(standin, acct)).list_account_aliases()["AccountAliases"]
        for acct in (PROD, DEV)
    }
    assert aliases == {PROD: ["prod"], DEV: ["dev", "dev-legacy"]}
    assert client(standin, "iam").list_account_aliases()["AccountAliases"] == []  # hub has none


# ----------------------------------------------------------------- Account


def test_list_regions(standin):
    standin.add_account(DEV, regions={"us-east-1": "ENABLED_BY_DEFAULT", "ap-east-1": "ENABLED"})
    acc = client(standin, "account")
    first = acc.list_regions()
    assert len(first["Regions"]) == 20 and first["NextToken"]
    everything = [r for p in acc.get_paginator("list_regions").paginate() for r in p["Regions"]]
    assert len(everything) == 21
    assert {"RegionName": "us-east-1", "RegionOptStatus": "ENABLED_BY_DEFAULT"} in everything
    disabled = acc.list_regions(RegionOptStatusContains=["DISABLED"])["Regions"]
    assert {r["RegionName"] for r in disabled} == {"af-south-1", "ap-east-1", "eu-south-1", "me-south-1"}

    dev = client(standin, "account", creds=assume(standin, DEV)).list_regions()["Regions"]
    assert dev == [
        {"RegionName": "ap-east-1", "RegionOptStatus": "ENABLED"},
        {"RegionName": "us-east-1", "RegionOptStatus": "ENABLED_BY_DEFAULT"},
    ]
    assert acc.list_regions(AccountId=DEV)["Regions"] == dev


# ----------------------------------------------------------------- denial and failures


def test_per_account_denial(standin):
    standin.add_account(PROD, deny={"cloudtrail:LookupEvents", "iam:*"})
    creds = assume(standin, PROD)
    with pytest.raises(ClientError) as exc:
        client(standin, "cloudtrail", creds=creds).lookup_events()
    assert error_code(exc) == "AccessDeniedException"
    assert "cloudtrail:LookupEvents" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        client(standin, "iam", creds=creds).get_credential_report()
    assert error_code(exc) == "AccessDenied"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert client(standin, "account", creds=creds).list_regions()["Regions"]  # not denied
    assert client(standin, "cloudtrail", creds=assume(standin, DEV)).lookup_events()["Events"] == []
    assert standin.stats.errors[("cloudtrail", "LookupEvents", "AccessDeniedException")] == 1


def test_failing_and_disabled_regions():
    with AwsStandIn(rate_per_second=None, fail_regions={"eu-north-1"}) as s:
        ok = client(s, "cloudtrail", region="eu-west-1", retries=NO_RETRY)
        assert ok.lookup_events()["Events"] == []
        for region in ("eu-north-1", "af-south-1"):  # configured failure; DISABLED opt-in region
            with pytest.raises(ClientError) as exc:
                client(s, "cloudtrail", region=region, retries=NO_RETRY).lookup_events()
            assert error_code(exc) == "UnrecognizedClientException"
            assert exc.value.response["Error"]["Message"] == "The security token included in the request is invalid"


# ----------------------------------------------------------------- server behaviour


def test_latency_is_concurrent_not_serialised():
    with AwsStandIn(latency=0.3, rate_per_second=None) as s:
        sts = client(s, "sts", max_pool_connections=32)
        sts.get_caller_identity()  # warm up
        results, errors = [], []

        def call():
            try:
                results.append(sts.get_caller_identity()["Account"])
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(32)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        assert not errors and results == [HUB_ACCOUNT] * 32
        assert elapsed < 1.5, elapsed  # 32 x 0.3 s would be 9.6 s if serialised


def test_from_config_loads_accounts_and_event_files(tmp_path):
    (tmp_path / "login.json").write_text((CORPUS / "01_root_console_login_success_no_mfa.json").read_text())
    config = tmp_path / "standin.json"
    config.write_text(
        json.dumps(
            {
                "rate_per_second": 0,
                "external_id": "cfg",
                "accounts": [
                    {
                        "id": PROD,
                        "alias": "prod",
                        "report_root": {"mfa_active": False},
                        "report_state": "complete",
                        "events": {"us-east-1": ["login.json"]},
                    }
                ],
            }
        )
    )
    with AwsStandIn.from_config(config) as s:
        creds = client(s, "sts").assume_role(RoleArn=ROLE.format(PROD), RoleSessionName="rc", ExternalId="cfg")[
            "Credentials"
        ]
        events = client(s, "cloudtrail", creds=creds).lookup_events()["Events"]
        assert [e["EventId"] for e in events] == ["deb1e1f9-c99b-4612-8e9f-21f93b5d79c0"]
        report = client(s, "iam", creds=creds).get_credential_report()["Content"].decode()
        assert next(csv.DictReader(io.StringIO(report)))["mfa_active"] == "false"


def test_runs_as_a_process_until_sigterm(tmp_path):
    manifest = tmp_path / "manifest.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.aws_standin",
            "--port",
            "0",
            "--accounts",
            "5",
            "--seed-root-logins",
            "2",
            "--latency",
            "0.05",
            "--manifest",
            str(manifest),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        info = json.loads(manifest.read_text())
        assert len(info["accounts"]) == 5 and len(info["root_login_accounts"]) == 2

        class Remote:  # just enough of AwsStandIn for client()
            hub_access_key, hub_secret_key = info["hub_access_key"], info["hub_secret_key"]

        Remote.url = url
        sts = client(Remote, "sts")
        found = {}
        for acct in info["accounts"]:
            creds = sts.assume_role(RoleArn=ROLE.format(acct), RoleSessionName="rc")["Credentials"]
            resp = client(Remote, "cloudtrail", creds=creds).lookup_events(
                LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "root"}]
            )
            found[acct] = len(resp["Events"])
        assert sorted(a for a, n in found.items() if n) == sorted(info["root_login_accounts"])

        stats = json.loads(urllib.request.urlopen(url + "/_standin/stats", timeout=5).read())
        assert sum(v for k, v in stats["calls"].items() if k.startswith("cloudtrail:LookupEvents:")) == 5
        assert sum(stats["assume_role_ok"].values()) == 5
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()
        proc.stderr.close()


def test_organizations_lists_every_account_with_names_and_tags():
    with AwsStandIn() as s:
        for n in range(25):
            s.add_account(f"5000000000{n:02d}", name=f"member-{n}", tags={"team": f"t{n}"})
        orgs = client(s, "organizations")
        listed = [a for page in orgs.get_paginator("list_accounts").paginate() for a in page["Accounts"]]
        assert len(listed) == 26 and {a["State"] for a in listed} == {"ACTIVE"}
        assert {a["Name"] for a in listed} >= {"member-0", "member-24"}
        assert orgs.list_tags_for_resource(ResourceId="500000000003")["Tags"] == [{"Key": "team", "Value": "t3"}]
        with pytest.raises(ClientError, match="TargetNotFoundException"):
            orgs.list_tags_for_resource(ResourceId="599999999999")


def test_generate_makes_a_new_report_only_over_an_old_one():
    with AwsStandIn(report_ready_after=1, report_max_age=0.2) as s:
        s.add_account(PROD, report_state="complete")
        iam = client(s, "iam", creds=creds_for(s, PROD))
        assert iam.generate_credential_report()["State"] == "COMPLETE"  # the report is young
        time.sleep(0.3)
        assert iam.generate_credential_report()["State"] == "STARTED"
        assert iam.generate_credential_report()["State"] == "COMPLETE"


def test_failures_on_demand_and_the_request_log():
    with AwsStandIn(record_requests=True) as s:
        s.add_account(PROD, rate_per_second=0, fail_next_pages="InvalidNextTokenException")
        s.add_events(PROD, "us-east-1", [root_login_record(PROD) for _ in range(3)])
        creds = creds_for(s, PROD)
        cloudtrail = client(s, "cloudtrail", creds=creds, retries=NO_RETRY)
        with pytest.raises(ClientError, match="ThrottlingException"):
            cloudtrail.lookup_events()
        s.add_account(PROD, rate_per_second=2)
        page = cloudtrail.lookup_events(MaxResults=1)
        with pytest.raises(ClientError, match="InvalidNextTokenException"):
            cloudtrail.lookup_events(MaxResults=1, NextToken=page["NextToken"])
        assert s.stats.assume_role_peak == 1
        assert [(service, action, token) for service, action, _, token in s.stats.requests] == [
            ("sts", "AssumeRole", None)
        ] + [("cloudtrail", "LookupEvents", creds["SessionToken"])] * 3


def creds_for(standin, account):
    return client(standin, "sts").assume_role(RoleArn=ROLE.format(account), RoleSessionName="rootcheck")["Credentials"]


def test_the_page_log_says_when_each_lookup_page_was_answered_and_what_it_held():
    with AwsStandIn(record_pages=True, rate_per_second=None, latency=0.05) as s:
        s.add_account(PROD)
        records = [root_login_record(PROD, NOW - timedelta(minutes=i), event_id=f"page-{i}") for i in range(3)]
        s.add_events(PROD, "us-east-1", records)
        cloudtrail = client(s, "cloudtrail", creds=creds_for(s, PROD), retries=NO_RETRY)
        asked = time.time()
        first = cloudtrail.lookup_events(
            MaxResults=2, LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "root"}]
        )
        answered = time.time()
        cloudtrail.lookup_events(
            MaxResults=2,
            NextToken=first["NextToken"],
            LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "root"}],
        )
        assert [(account, region, attribute, set(ids)) for _, account, region, attribute, ids in s.stats.pages] == [
            (PROD, "us-east-1", ("Username", "root"), {"page-0", "page-1"}),
            (PROD, "us-east-1", ("Username", "root"), {"page-2"}),
        ]
        assert asked + 0.05 <= s.stats.page_served("page-1") <= answered, "answered after the latency"
        assert s.stats.page_served("page-2") > s.stats.page_served("page-0")
        assert s.stats.page_served("never-seen") is None
    with AwsStandIn() as quiet:
        assert quiet.stats.pages == [], "off unless asked for"
