"""The member-role template grants exactly what the code calls, no more and no less."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.aws.errors import PERMISSION_OF
from bot.config import load_settings
from bot.models import Account
from bot.sweeper import Sweeper
from tests.aws.support import sweep
from tests.conftest import new_account_id
from tests.fakes.aws_standin import AwsStandIn, root_login_record
from tests.test_deploy import member_role_actions


def test_member_role_grants_exactly_the_calls_a_sweep_makes(monkeypatch):
    account = new_account_id()
    with AwsStandIn() as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("ROOTCHECK_REGIONS", "all")
        server.add_account(account, report_state="absent", report_csv=None)
        server.add_events(account, "us-east-1", [root_login_record(account)])
        sweeper = Sweeper(load_settings(), lookup_interval=0.01, report_poll=0.01)
        result = sweep(sweeper, [Account(account)], datetime.now(UTC) - timedelta(hours=1))
        assert result.errors == []
        called = {f"{service}:{action}" for (service, action, caller) in server.stats.calls if caller == account}
    assert called == member_role_actions(all_regions=True)
    assert set(PERMISSION_OF.values()) >= called  # every call has a permission hint for AccessDenied
