"""Evidence in parts, handed over as soon as each is complete; failures stay where they happen."""

from __future__ import annotations

import copy
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

from bot.aws.collect import ACCOUNTS_PER_WORKER, Collector
from bot.aws.sessions import AwsSessions
from bot.config import load_settings
from bot.models import Account, Window
from bot.sweeper import Sweeper
from tests.aws.support import sweep
from tests.conftest import CORPUS, new_account_id
from tests.fakes.aws_standin import root_login_record

HOUR_AGO = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
START = HOUR_AGO - timedelta(minutes=5)


def _activity(account: str, n: int) -> dict:
    record = copy.deepcopy(json.loads((CORPUS / "11_root_readonly_list_access_keys.json").read_text()))
    record.update(
        recipientAccountId=account,
        eventID=str(uuid.uuid4()),
        eventTime=(HOUR_AGO + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    record["userIdentity"].update(accountId=account, arn=f"arn:aws:iam::{account}:root")
    return record


def test_a_sign_in_is_handed_over_before_the_report_is_ready_and_done_comes_last(hub_env):
    server = hub_env(report_ready_after=3)
    account = Account(new_account_id())
    server.add_account(account.id, report_state="absent")
    server.add_events(account.id, "us-east-1", [root_login_record(account.id, HOUR_AGO)])
    parts = []
    result = sweep(Sweeper(load_settings(), lookup_interval=0.01, report_poll=0.3), [account], START, parts=parts)
    assert [(e.part, e.region) for e, _ in parts] == [
        ("page", "us-east-1"),
        ("page", "us-east-1"),
        ("lookups", "us-east-1"),
        ("report", None),
        ("done", None),
    ]
    page, found = parts[0]
    assert [f.kind for f in found] == ["root_console_login"] and page.window.start == START
    assert parts[1][1] == [], "the other lookup's page holds the same sign-in: one finding"
    assert parts[2][0].window.start == START and parts[2][0].errors == [] and parts[2][0].records == []
    assert parts[3][0].report_row is not None and parts[4][0].errors == []
    assert result.checked == [account.id]


def test_a_failed_page_keeps_the_records_read_before_it(hub_env, monkeypatch):
    server = hub_env()
    monkeypatch.setenv("ROOTCHECK_REGIONS", "us-east-1,eu-west-1")
    account = Account(new_account_id())
    server.add_account(account.id, report_state="complete", fail_next_pages="InvalidNextTokenException")
    server.add_events(
        account.id,
        "us-east-1",
        [root_login_record(account.id, HOUR_AGO), *(_activity(account.id, n) for n in range(1, 61))],
    )
    server.add_events(account.id, "eu-west-1", [root_login_record(account.id, HOUR_AGO, region="eu-west-1")])
    parts = []
    result = sweep(
        Sweeper(load_settings(), lookup_interval=0.01), [account], START, report_due=lambda a: False, parts=parts
    )
    by_region = {e.region: e for e, found in parts if e.part == "lookups"}
    pages = {
        region: [(e, found) for e, found in parts if e.part == "page" and e.region == region] for region in by_region
    }
    us, us_found = by_region["us-east-1"], [f for _, found in pages["us-east-1"] for f in found]
    assert [e.code for e in us.errors] == ["InvalidNextTokenException"] and us.errors[0].region == "us-east-1"
    assert sum(len(e.records) for e, _ in pages["us-east-1"]) == 50 + 1  # root's 1st page, ConsoleLogin's
    assert "root_console_login" in {f.kind for f in us_found} and len(us_found) == 51
    eu, eu_found = by_region["eu-west-1"], [f for _, found in pages["eu-west-1"] for f in found]
    assert eu.errors == [] and [f.region for f in eu_found] == ["eu-west-1"]
    assert [e.part for e, _ in parts][-1] == "done" and "report" not in [e.part for e, _ in parts]
    assert result.checked == [] and len(result.findings) == 52


def test_a_denied_role_still_gives_exactly_one_done_part(hub_env):
    server = hub_env()
    account = Account(new_account_id())
    server.add_account(account.id, deny_assume_role=True)
    parts = []
    result = sweep(Sweeper(load_settings()), [account], START, parts=parts)
    assert [e.part for e, _ in parts] == ["done"]
    assert [e.code for e in parts[0][0].errors] == ["AccessDenied"] and result.checked == []


def test_a_failing_callback_is_logged_counted_and_never_stalls_the_sweep(hub_env, caplog):
    server = hub_env()
    accounts = [Account(new_account_id()) for _ in range(ACCOUNTS_PER_WORKER + 3)]  # more than one worker admits
    for account in accounts:
        server.add_account(account.id, report_state="complete")
    collector = Collector(AwsSessions("RootCheckAudit"), ["us-east-1"], workers=1, lookup_interval=0.01)

    def broken(evidence):
        raise RuntimeError("store is down")

    with caplog.at_level(logging.ERROR, logger="bot.aws.collect"):
        collector.collect(accounts, lambda a, r: Window(START, datetime.now(UTC)), lambda a: False, broken)
    assert collector.failed_callbacks == len(accounts) * 2  # each account's lookups part and its done part
    assert sum(str(r.exc_info[1]) == "store is down" for r in caplog.records if r.exc_info) == len(accounts) * 2


def test_one_throttled_account_never_slows_the_others(hub_env):
    server = hub_env()
    throttled = Account(new_account_id())
    server.add_account(throttled.id, report_state="complete", rate_per_second=0)  # every LookupEvents throttled
    others = [Account(new_account_id()) for _ in range(5)]
    for account in others:
        server.add_account(account.id, report_state="complete")
        server.add_events(account.id, "us-east-1", [root_login_record(account.id, HOUR_AGO)])
    parts = []
    collector = Collector(AwsSessions("RootCheckAudit"), ["us-east-1"], workers=1, lookup_interval=0.3, retry_base=0.1)
    collector.collect(
        [throttled, *others], lambda a, r: Window(START, datetime.now(UTC)), lambda a: False, parts.append
    )
    # one worker: the throttled account's retries wait on the timer, never in the worker the others need
    done = [e.account.id for e in parts if e.part == "done"]
    assert done[-1] == throttled.id and set(done[:-1]) == {a.id for a in others}
    (lookups,) = [e for e in parts if e.account == throttled and e.part == "lookups"]
    assert [e.code for e in lookups.errors] == ["ThrottlingException"] * 2
    assert server.stats.count("cloudtrail", "LookupEvents", throttled.id) == 2 * 5  # 5 attempts per lookup
    assert all(server.stats.throttled[(a.id, "us-east-1")] == 0 for a in others)


def test_us_east_1_is_searched_even_when_the_regions_cannot_be_listed(hub_env, monkeypatch):
    server = hub_env()
    monkeypatch.setenv("ROOTCHECK_REGIONS", "all")
    account = Account(new_account_id())
    server.add_account(account.id, report_state="complete", deny={"account:ListRegions"})
    server.add_events(account.id, "us-east-1", [root_login_record(account.id, HOUR_AGO)])
    parts = []
    result = sweep(
        Sweeper(load_settings(), lookup_interval=0.01), [account], START, report_due=lambda a: False, parts=parts
    )
    assert [(e.part, e.region) for e, _ in parts if e.part != "page"] == [("lookups", "us-east-1"), ("done", None)]
    assert [f.kind for f in result.findings] == ["root_console_login"] and result.checked == [account.id]
    assert [e.code for e in parts[-1][0].errors] == ["AccessDeniedException"]
