"""Organizations discovery: ACTIVE accounts with their names, and owners from an account tag."""

from __future__ import annotations

import logging
import time
import uuid

import boto3
import pytest

from bot.aws import organizations
from bot.aws.organizations import discover_accounts
from bot.aws.sessions import AwsSessions
from bot.pacing import Pacer
from tests.conftest import new_account_id

TAG = "rootcheck-owners"


@pytest.fixture
def moto_org(moto_server, monkeypatch):
    """The session's moto Organization, with the hub's boto3 pointed at it."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(organizations, "_PACE", Pacer(0.0))  # other modules' accounts share this Organization
    orgs = boto3.client("organizations", endpoint_url=moto_server, region_name="us-east-1")
    try:
        orgs.create_organization(FeatureSet="ALL")
    except orgs.exceptions.AlreadyInOrganizationException:
        pass
    return orgs


def _create(orgs, name: str, owners: str | None = None) -> str:
    tags = [{"Key": TAG, "Value": owners}] if owners is not None else []
    status = orgs.create_account(AccountName=name, Email=f"{uuid.uuid4().hex}@example.com", Tags=tags)
    return status["CreateAccountStatus"]["AccountId"]


def test_names_and_owners_from_the_organization(moto_org):
    owned = _create(moto_org, "prod-payments", "U0ALICE S0SECOPS bob@example.com not-an-owner")
    plain = _create(moto_org, "sandbox")
    found = {a.id: a for a in discover_accounts(AwsSessions("RootCheckAudit"), TAG)}
    assert found[owned].name == "prod-payments"
    assert found[owned].owners == ("U0ALICE", "S0SECOPS", "bob@example.com")
    assert found[plain].name == "sandbox" and found[plain].owners == ()
    without = {a.id: a for a in discover_accounts(AwsSessions("RootCheckAudit"), None)}
    assert without[owned].owners == () and without[owned].name == "prod-payments"


def test_a_denied_tag_call_keeps_the_accounts_and_says_how_to_fix_it(hub_env, caplog):
    server = hub_env()
    server.add_account(server.hub_account, deny={"organizations:ListTagsForResource"})
    members = [new_account_id() for _ in range(3)]
    for account in members:
        server.add_account(account, name=f"member-{account}", tags={TAG: "U0OWNER"})
    with caplog.at_level(logging.WARNING, logger="bot.aws.organizations"):
        found = {a.id: a for a in discover_accounts(AwsSessions("RootCheckAudit"), TAG)}
    assert set(members) <= set(found) and all(found[a].owners == () for a in members)
    assert found[members[0]].name == f"member-{members[0]}"
    (warning,) = caplog.records
    assert "AccessDenied" in warning.getMessage() and "organizations:ListTagsForResource" in warning.getMessage()


def test_organizations_calls_are_paced(hub_env):
    server = hub_env()
    members = [new_account_id() for _ in range(24)]
    for account in members:
        server.add_account(account, tags={TAG: "U0OWNER"})
    started = time.monotonic()
    found = discover_accounts(AwsSessions("RootCheckAudit"), TAG)
    elapsed = time.monotonic() - started
    calls = server.stats.count("organizations")
    assert calls == 2 + len(found) and all(a.owners == ("U0OWNER",) for a in found if a.id in members)
    assert elapsed >= (calls - 1) / organizations.ORGANIZATIONS_RATE
