"""One client per (service, Region) for every account: each request signed as its own account."""

from __future__ import annotations

import gc
import re
import weakref
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from bot.aws.sessions import AwsSessions, NoAccountContext, jittered_expiry
from bot.config import load_settings
from bot.models import Account
from bot.sweeper import Sweeper
from tests.aws.support import sweep
from tests.conftest import new_account_id

_CREDENTIAL = re.compile(r"Credential=([^/]+)/")


def _accounts(server, n: int) -> list[Account]:
    accounts = [Account(new_account_id()) for _ in range(n)]
    for account in accounts:
        server.add_account(account.id, report_state="complete")
    return accounts


def test_requests_of_two_accounts_on_one_client_carry_each_account_s_credentials(hub_env):
    server = hub_env(record_requests=True)
    first, second = _accounts(server, 2)
    sessions = AwsSessions("RootCheckAudit")
    client = sessions.client("cloudtrail", "us-east-1")
    for account in (first, second, first):
        with sessions.acting_as(account):
            assert sessions.client("cloudtrail", "us-east-1") is client
            client.lookup_events(MaxResults=1)
    sent = [
        (_CREDENTIAL.search(auth).group(1), token)
        for service, action, auth, token in server.stats.requests
        if action == "LookupEvents"
    ]
    expected = []
    for account in (first, second, first):
        frozen = sessions.credentials(account).get_frozen_credentials()
        expected.append((frozen.access_key, frozen.token))
    assert sent == expected
    assert len({key for key, _ in sent}) == 2 and server.hub_access_key not in {key for key, _ in sent}
    assert server.stats.count("cloudtrail", "LookupEvents", first.id) == 2
    assert server.stats.count("cloudtrail", "LookupEvents", second.id) == 1


def test_a_call_without_an_account_is_refused_before_anything_is_sent(hub_env):
    server = hub_env()
    (account,) = _accounts(server, 1)
    sessions = AwsSessions("RootCheckAudit")
    client = sessions.client("cloudtrail", "us-east-1")
    with pytest.raises(NoAccountContext):
        client.lookup_events(MaxResults=1)
    with ThreadPoolExecutor(1) as worker:  # a worker that acted for an account keeps no trace of it
        worker.submit(_call_as, sessions, account, client).result()
        with pytest.raises(NoAccountContext):
            worker.submit(client.lookup_events, MaxResults=1).result()
    assert server.stats.count("cloudtrail", "LookupEvents", account.id) == 1
    assert server.stats.count("cloudtrail", "LookupEvents", server.hub_account) == 0
    assert sessions.base_client("sts").get_caller_identity()["Account"] == server.hub_account  # hub calls: no account


def _call_as(sessions: AwsSessions, account: Account, client) -> None:
    with sessions.acting_as(account):
        client.lookup_events(MaxResults=1)


def test_sockets_are_bounded_by_the_pool_not_by_the_accounts(hub_env, monkeypatch):
    server = hub_env()
    monkeypatch.setenv("ROOTCHECK_REGIONS", "us-east-1,eu-west-1")
    accounts = _accounts(server, 40)
    sweeper = Sweeper(load_settings(ROOTCHECK_CONCURRENCY=4), lookup_interval=0.01)
    result = sweep(sweeper, accounts, datetime.now(UTC) - timedelta(hours=1))
    assert result.errors == [] and len(result.checked) == 40
    # clients: CloudTrail in 2 Regions, IAM, and the hub's STS; each keeps at most 4 connections
    assert server.stats.peak_connections <= 4 * 4
    assert server.stats.assume_role_ok.total() == 40


def test_a_sweep_leaves_no_evidence_behind(hub_env):
    server = hub_env()
    accounts = _accounts(server, 5)
    sweeper = Sweeper(load_settings(), lookup_interval=0.01)
    handed_over = []
    for _ in range(2):
        parts = []
        assert sweep(sweeper, accounts, datetime.now(UTC) - timedelta(hours=1), parts=parts).errors == []
        handed_over += [weakref.ref(evidence) for evidence, _ in parts]
        del parts
    gc.collect()
    assert len(handed_over) == 5 * 2 * 3 and [ref for ref in handed_over if ref() is not None] == []


def test_expiry_jitter_spreads_refreshes_and_leaves_short_credentials_alone():
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    hour = now + timedelta(hours=1)
    assert jittered_expiry(hour, now, draw=0.0) == hour
    # up to a quarter of the 45 minutes before botocore's 15-minute refresh window
    assert jittered_expiry(hour, now, draw=1.0) == hour - timedelta(minutes=45) / 4
    fourteen = now + timedelta(minutes=14)
    assert jittered_expiry(fourteen, now, draw=1.0) == fourteen
