"""Sweeping an Organization over HTTP: moto Organizations + the STS/CloudTrail/IAM stand-in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from bot.config import load_settings
from bot.models import Account
from bot.sweeper import Sweeper
from tests.aws.support import sweep
from tests.conftest import json_lines, new_account_id
from tests.fakes.aws_standin import AwsStandIn, root_login_record

MASTER = "123456789012"  # moto's caller account: the Organization's management account
EXTERNAL_ID = "rootcheck-ext-7f3a"
ACCOUNTS = 250


@pytest.fixture(scope="module")
def organization(moto_server):
    orgs = boto3.client(
        "organizations",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        orgs.create_organization(FeatureSet="ALL")
    except orgs.exceptions.AlreadyInOrganizationException:
        pass
    for n in range(ACCOUNTS):
        orgs.create_account(AccountName=f"member-{n}", Email=f"member-{n}@example.com")
    ids = sorted(a["Id"] for page in orgs.get_paginator("list_accounts").paginate() for a in page["Accounts"])
    now = datetime.now(UTC) - timedelta(minutes=30)
    members = [i for i in ids if i != MASTER]
    seeded = {members[n] for n in range(0, len(members), 25)} | {MASTER}
    denied = {members[n] for n in range(3, len(members), 37)}
    broken_region = members[5]
    with AwsStandIn(hub_account=MASTER, external_id=EXTERNAL_ID, role_name="RootCheckAudit") as server:
        for account in ids:
            server.add_account(
                account,
                report_state="complete",
                deny_assume_role=account in denied,
                fail_regions=["eu-west-1"] if account == broken_region else None,
            )
        for account in seeded:
            server.add_events(account, "us-east-1", [root_login_record(account, now)])
        env = server.env() | {
            "AWS_ENDPOINT_URL_ORGANIZATIONS": moto_server,
            "ROOTCHECK_ORG_DISCOVERY": "true",
            "ROOTCHECK_EXTERNAL_ID": EXTERNAL_ID,
            "ROOTCHECK_REGIONS": "us-east-1,eu-west-1",
        }
        yield {
            "server": server,
            "env": env,
            "ids": ids,
            "seeded": seeded - denied,
            "denied": denied,
            "broken_region": broken_region,
        }


def test_org_discovery_scan_finds_seeded_logins_and_names_failures(organization, run_rootcheck):
    org = organization
    result = run_rootcheck("scan", "--format", "json", env=org["env"], timeout=120)
    stderr = result.stderr.decode()
    assert result.returncode == 3, stderr
    findings = json_lines(result.stdout)
    assert {f["account_id"] for f in findings} == org["seeded"]
    assert {f["kind"] for f in findings} == {"root_console_login"}
    for account in org["denied"]:
        assert f"account {account}: AccessDenied" in stderr and "ExternalId" in stderr
    assert f"account {org['broken_region']} (eu-west-1): UnrecognizedClientException" in stderr
    # checked: sign-ins and global calls (us-east-1) read; the broken Region is an error of its own
    assert f"checked {len(org['ids']) - len(org['denied'])} of {len(org['ids'])} account(s)" in stderr
    stats = org["server"].stats
    assert stats.throttled_total == 0
    # rootcheck sends at most 1/s per account and Region (tests/aws/test_pacing.py); seen from this
    # busy in-process server, arrival jitter can put two requests in one second, never more
    assert max(stats.max_rate.values()) <= 2
    assert stats.count("sts", "AssumeRole", None) <= 1.1 * len(org["ids"])
    assert stats.count("cloudtrail", "LookupEvents", MASTER) >= 3  # the hub itself, with its own credentials
    assert MASTER not in {k.rsplit(":", 1)[-1] for k in stats.assume_role}


def test_short_lived_credentials_refresh_themselves(hub_env):
    server = hub_env(credential_lifetime=840)  # inside botocore's 15-minute refresh window
    accounts = [Account(new_account_id()) for _ in range(5)]
    for account in accounts:
        server.add_account(account.id, report_state="complete")
    sweeper = Sweeper(load_settings(), lookup_interval=0.05)
    start = datetime.now(UTC) - timedelta(hours=1)
    for _ in range(2):
        result = sweep(sweeper, accounts, start)
        assert result.errors == [] and sorted(result.checked) == sorted(a.id for a in accounts)
    assert all(server.stats.assume_role_ok[a.id] >= 2 for a in accounts)  # refreshed, never expired
    assert server.stats.count("iam", None, None) > 0


def test_long_lived_credentials_assume_once_per_account(hub_env):
    server = hub_env()
    accounts = [Account(new_account_id()) for _ in range(20)]
    for account in accounts:
        server.add_account(account.id, report_state="expired")
    sweeper = Sweeper(load_settings(ROOTCHECK_CONCURRENCY=4), lookup_interval=0.05, report_poll=0.05)
    start = datetime.now(UTC) - timedelta(hours=1)
    for n in range(3):
        assert sweep(sweeper, accounts, start, report_due=lambda account, first=n == 0: first).errors == []
    assert sum(server.stats.assume_role_ok[a.id] for a in accounts) == len(accounts)
    # the report was expired: Generate starts a new one, and one Get once it is made
    assert all(server.stats.count("iam", "GenerateCredentialReport", a.id) == 1 for a in accounts)
    assert all(server.stats.count("iam", "GetCredentialReport", a.id) == 1 for a in accounts)


def test_throttling_is_retried(hub_env):
    server = hub_env(rate_per_second=0.5)  # stricter than rootcheck's own pace of 1/s
    account = Account(new_account_id())
    server.add_account(account.id, report_state="complete")
    server.add_events(account.id, "us-east-1", [root_login_record(account.id)])
    result = sweep(Sweeper(load_settings()), [account], datetime.now(UTC) - timedelta(hours=1))
    assert result.errors == []
    assert [f.kind for f in result.findings] == ["root_console_login"]
    assert server.stats.throttled_total >= 1


def test_window_start_is_per_account(hub_env):
    server = hub_env()
    old, new = Account(new_account_id()), Account(new_account_id())
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    for account in (old, new):
        server.add_account(account.id, report_state="complete")
        server.add_events(account.id, "us-east-1", [root_login_record(account.id, two_hours_ago)])
    starts = {old.id: two_hours_ago - timedelta(minutes=20), new.id: two_hours_ago + timedelta(minutes=20)}
    result = sweep(Sweeper(load_settings(), lookup_interval=0.05), [old, new], lambda a: starts[a.id])
    assert [f.account_id for f in result.findings] == [old.id]


def test_all_regions_searches_every_enabled_region(hub_env, monkeypatch):
    server = hub_env()
    account = Account(new_account_id())
    server.add_account(account.id, report_state="complete")
    server.add_events(account.id, "ap-southeast-2", [root_login_record(account.id, region="ap-southeast-2")])
    monkeypatch.setenv("ROOTCHECK_REGIONS", "all")
    result = sweep(
        Sweeper(load_settings(), lookup_interval=0.01), [account], datetime.now(UTC) - timedelta(hours=1)
    )
    assert result.errors == [] and [f.region for f in result.findings] == ["ap-southeast-2"]
    assert server.stats.count("account", "ListRegions", account.id) >= 1
