"""`rootcheck doctor` says that us-east-1 is searched even when ROOTCHECK_REGIONS leaves it out."""

from __future__ import annotations

from tests.conftest import new_account_id
from tests.harness import CHANNEL, serve_env


def _doctor(run_rootcheck, fake_slack, standin, tmp_path, regions: str) -> str:
    account = new_account_id()
    standin.add_account(account, report_state="complete")
    env = serve_env(
        fake_slack,
        standin.env(),
        f"sqlite:///{tmp_path}/rc.db",
        ROOTCHECK_ACCOUNTS=account,
        ROOTCHECK_CHANNEL=CHANNEL,
        ROOTCHECK_REGIONS=regions,
    )
    result = run_rootcheck("doctor", env=env)
    out = " ".join(result.stdout.decode().split())
    assert result.returncode == 0, out  # a note, not a problem
    return out


def test_doctor_notes_us_east_1_is_searched_anyway(run_rootcheck, fake_slack, standin, tmp_path):
    out = _doctor(run_rootcheck, fake_slack, standin, tmp_path, "eu-west-1,eu-central-1")
    assert "ROOTCHECK_REGIONS" in out and "us-east-1 is not listed, and is searched anyway" in out


def test_doctor_says_nothing_when_us_east_1_is_listed(run_rootcheck, fake_slack, standin, tmp_path):
    out = _doctor(run_rootcheck, fake_slack, standin, tmp_path, "us-east-1,eu-west-1")
    assert "searched anyway" not in out
