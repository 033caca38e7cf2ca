"""`rootcheck doctor` against the fakes: names what is wrong and how to fix it; exit 0 only when all is well."""

from __future__ import annotations

import uuid

from bot.slack.ids import BOT_SCOPES
from tests.conftest import new_account_id
from tests.harness import serve_env


def _channel(fake, member: bool = True) -> str:
    channel = f"C{uuid.uuid4().hex[:8].upper()}"
    fake.add_channel(channel, members=["U0ADMIN"], bot_is_member=member)
    return channel


def _healthy_env(fake, standin, tmp_path) -> tuple[str, dict]:
    """One account that works and a channel the bot is in."""
    account = new_account_id()
    standin.add_account(account, report_state="complete")
    return account, serve_env(
        fake, standin.env(), f"sqlite:///{tmp_path}/rc.db", ROOTCHECK_ACCOUNTS=account, ROOTCHECK_CHANNEL=_channel(fake)
    )


def test_all_well_exits_0(run_rootcheck, fake_slack, standin, tmp_path):
    account, env = _healthy_env(fake_slack, standin, tmp_path)
    result = run_rootcheck("doctor", env=env)
    out = result.stdout.decode()
    assert result.returncode == 0, out
    assert "All checks passed." in out and account in out and "FAIL" not in out


def test_problems_are_named_with_their_fix(run_rootcheck, fake_slack, standin, tmp_path):
    denied, partial = new_account_id(), new_account_id()
    standin.add_account(denied, deny_assume_role=True)
    standin.add_account(partial, report_state="complete", deny={"iam:ListAccountAliases"})
    outside = _channel(fake_slack, member=False)
    env = serve_env(
        fake_slack,
        standin.env(),
        f"sqlite:///{tmp_path}/rc.db",
        ROOTCHECK_ACCOUNTS=f"{denied},{partial}",
        ROOTCHECK_CHANNEL=outside,
    )
    result = run_rootcheck("doctor", env=env)
    out = " ".join(result.stdout.decode().split())
    assert result.returncode == 1
    assert denied in out and "AccessDenied" in out and "member-role.yaml" in out
    assert partial in out and "iam:ListAccountAliases" in out
    assert outside in out and "/invite @rootcheck" in out


def test_missing_scope(run_rootcheck, fake_slack, standin, tmp_path):
    _, env = _healthy_env(fake_slack, standin, tmp_path)
    fake_slack.set_scopes([s for s in BOT_SCOPES if s != "usergroups:read"])
    try:
        result = run_rootcheck("doctor", env=env)
    finally:
        fake_slack.set_scopes(list(BOT_SCOPES))
    out = " ".join(result.stdout.decode().split())
    assert result.returncode == 1
    assert "missing scopes: usergroups:read" in out


def test_signing_secret_check(run_rootcheck, fake_slack, standin, tmp_path):
    _, env = _healthy_env(fake_slack, standin, tmp_path)
    del env["SLACK_SIGNING_SECRET"]
    result = run_rootcheck("doctor", env=env)
    assert result.returncode == 1
    assert "SLACK_SIGNING_SECRET is not set" in " ".join(result.stdout.decode().split())


def test_owners_that_cannot_be_asked_are_named(run_rootcheck, fake_slack, standin, tmp_path):
    account = new_account_id()
    standin.add_account(account, report_state="complete")
    fake_slack.add_user("U0DOCOWNER", email="doc.owner@example.com")
    fake_slack.add_user("U0GONE", deleted=True)
    accounts = tmp_path / "accounts.yml"
    accounts.write_text(f'- id: "{account}"\n  owners: [doc.owner@example.com, nobody@example.com, U0GONE]\n')
    env = serve_env(
        fake_slack,
        standin.env(),
        f"sqlite:///{tmp_path}/rc.db",
        ROOTCHECK_ACCOUNTS_FILE=str(accounts),
        ROOTCHECK_CHANNEL=_channel(fake_slack),
    )
    result = run_rootcheck("doctor", env=env)
    out = " ".join(result.stdout.decode().split())
    assert result.returncode == 1
    assert f"owners of {account}" in out and "nobody@example.com resolves to nobody" in out
    assert "no direct message to U0GONE:" in out and "user_disabled" in out  # a table cell may wrap between them
    assert "doc.owner" not in out, "an owner who resolves and can be asked is not a problem"
