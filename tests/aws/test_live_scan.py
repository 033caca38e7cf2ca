"""`rootcheck scan` live, over HTTP: real boto3 → moto (STS) and the CloudTrail/IAM stand-in."""

from __future__ import annotations

import copy
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import CORPUS, json_lines
from tests.fakes.aws_standin import AwsStandIn, root_login_record, root_report_csv

MOTO_ACCOUNT = "123456789012"  # the account moto's STS says the caller is in


def _activity(account: str, when: datetime, n: int) -> dict:
    record = copy.deepcopy(json.loads((CORPUS / "11_root_readonly_list_access_keys.json").read_text()))
    record.update(
        recipientAccountId=account,
        eventID=str(uuid.uuid4()),
        eventTime=(when - timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    record["userIdentity"].update(accountId=account, arn=f"arn:aws:iam::{account}:root")
    return record


def _iam_user_login(account: str, when: datetime) -> dict:
    record = json.loads((CORPUS / "07_iam_user_console_login_success_no_mfa.json").read_text())
    record = record["Records"][0] if "Records" in record else record
    record.update(recipientAccountId=account, eventID=str(uuid.uuid4()), eventTime=when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return record


@pytest.fixture(scope="module")
def own_account(moto_server):
    """A stand-in whose hub credentials belong to moto's caller account, seeded with root use."""
    now = datetime.now(UTC) - timedelta(hours=1)
    with AwsStandIn(hub_account=MOTO_ACCOUNT, report_ready_after=1) as server:
        server.add_account(
            MOTO_ACCOUNT,
            alias="prod-payments",
            report_state="absent",
            report_csv=root_report_csv(MOTO_ACCOUNT, password_last_used=now, mfa_active=False),
        )
        server.add_events(
            MOTO_ACCOUNT,
            "us-east-1",
            [
                root_login_record(MOTO_ACCOUNT, now),
                root_login_record(MOTO_ACCOUNT, now, success=False),
                *(_activity(MOTO_ACCOUNT, now, n) for n in range(60)),
                *(_iam_user_login(MOTO_ACCOUNT, now) for _ in range(5)),
            ],
        )
        env = server.env() | {"AWS_ENDPOINT_URL_STS": moto_server}
        yield server, env


def test_live_scan_of_the_current_account(own_account, run_rootcheck):
    server, env = own_account
    started = time.monotonic()
    result = run_rootcheck("scan", "--format", "json", env=env)
    assert result.returncode == 1, result.stderr.decode()
    kinds = sorted(f["kind"] for f in json_lines(result.stdout))
    assert kinds == sorted(
        ["root_console_login", "root_console_login_failed", "root_password_used", "root_mfa_disabled"]
        + ["root_activity"] * 60
    )
    assert {f["account_id"] for f in json_lines(result.stdout)} == {MOTO_ACCOUNT}
    stats = server.stats
    pages = stats.count("cloudtrail", "LookupEvents", MOTO_ACCOUNT)
    assert pages == 3  # Username=root: 62 root events over 2 pages of 50; EventName=ConsoleLogin: 1 page
    # sent at most 1/s (tests/aws/test_pacing.py); arrival jitter on a loaded machine may show 2 in a second
    assert stats.max_rate[(MOTO_ACCOUNT, "us-east-1")] <= 2
    assert stats.throttled_total == 0
    # the report was missing: Generate starts it, and one Get once it is made
    assert stats.count("iam", "GenerateCredentialReport", MOTO_ACCOUNT) == 1
    assert stats.count("iam", "GetCredentialReport", MOTO_ACCOUNT) == 1
    assert not [key for key in stats.errors if key[:2] == ("iam", "GetCredentialReport")]
    assert time.monotonic() - started < 30


def test_live_scan_table_names_the_account_alias_free_columns(own_account, run_rootcheck):
    _, env = own_account
    result = run_rootcheck("scan", "--format", "table", "--since", "2h", env=env)
    assert result.returncode == 1
    assert b"root_console_login" in result.stdout and MOTO_ACCOUNT.encode() in result.stdout


def test_denied_permission_names_account_and_permission_exit_3(moto_server, run_rootcheck):
    with AwsStandIn(hub_account=MOTO_ACCOUNT) as server:
        server.add_account(MOTO_ACCOUNT, report_state="complete", deny={"cloudtrail:LookupEvents"})
        result = run_rootcheck("scan", "--format", "json", env=server.env() | {"AWS_ENDPOINT_URL_STS": moto_server})
    stderr = result.stderr.decode()
    assert result.returncode == 3, stderr
    assert f"account {MOTO_ACCOUNT}" in stderr and "cloudtrail:LookupEvents" in stderr
    assert "Traceback" not in stderr


def test_no_credentials_is_a_configuration_error(run_rootcheck, tmp_path):
    env = {
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:9",
    }
    result = run_rootcheck("scan", env=env)
    stderr = result.stderr.decode()
    assert result.returncode == 2
    assert "no AWS credentials" in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_invalid_configuration_exits_2_naming_the_variable(run_rootcheck):
    result = run_rootcheck("scan", env={"ROOTCHECK_REGIONS": "moon-base-1"})
    assert result.returncode == 2
    assert result.stderr.decode().startswith("rootcheck: ROOTCHECK_REGIONS:")


def test_sign_ins_are_searched_in_us_east_1_whatever_the_regions_setting(moto_server, run_rootcheck):
    now = datetime.now(UTC) - timedelta(minutes=30)
    with AwsStandIn(hub_account=MOTO_ACCOUNT) as server:
        server.add_account(MOTO_ACCOUNT, report_state="complete")
        server.add_events(MOTO_ACCOUNT, "us-east-1", [root_login_record(MOTO_ACCOUNT, now, success=False)])
        env = server.env() | {"AWS_ENDPOINT_URL_STS": moto_server, "ROOTCHECK_REGIONS": "eu-west-1"}
        result = run_rootcheck("scan", "--format", "json", env=env)
        stats = server.stats
    assert result.returncode == 1, result.stderr.decode()
    assert [(f["kind"], f["region"]) for f in json_lines(result.stdout)] == [("root_console_login_failed", "us-east-1")]
    assert {region for (account, region) in stats.max_rate if account == MOTO_ACCOUNT} == {"us-east-1", "eu-west-1"}
    assert stats.count("cloudtrail", "LookupEvents", MOTO_ACCOUNT) == 3  # Username and ConsoleLogin there, one here


def test_a_failing_region_is_named_and_the_others_findings_are_printed(moto_server, run_rootcheck):
    now = datetime.now(UTC) - timedelta(minutes=30)
    with AwsStandIn(hub_account=MOTO_ACCOUNT) as server:
        server.add_account(MOTO_ACCOUNT, report_state="complete", fail_regions=["eu-west-1"])
        server.add_events(MOTO_ACCOUNT, "us-east-1", [root_login_record(MOTO_ACCOUNT, now)])
        env = server.env() | {"AWS_ENDPOINT_URL_STS": moto_server, "ROOTCHECK_REGIONS": "us-east-1,eu-west-1"}
        result = run_rootcheck("scan", "--format", "json", env=env)
    stderr = result.stderr.decode()
    assert result.returncode == 3, stderr
    assert f"account {MOTO_ACCOUNT} (eu-west-1): UnrecognizedClientException" in stderr
    assert [f["kind"] for f in json_lines(result.stdout)] == ["root_console_login"]
    assert "checked 1 of 1 account(s), 1 with errors, 1 finding(s)" in stderr
