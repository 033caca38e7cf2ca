"""Credential report parsing and the root-row rules."""

from __future__ import annotations

import pytest

from bot.checks.credential_report import check_root_row, has_password, parse_report, root_row
from bot.timeutil import parse_time

HEADER = (
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
    "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"
    "access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,"
    "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,"
    "access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"
    "cert_1_last_rotated,cert_2_active,cert_2_last_rotated"
)


def root(
    password_enabled="not_supported",
    last_used="no_information",
    mfa="true",
    key1="false",
    key1_rotated="N/A",
    key2="false",
    key2_rotated="N/A",
) -> dict:
    line = (
        f"<root_account>,arn:aws:iam::111122223333:root,2019-01-01T00:00:00+00:00,{password_enabled},"
        f"{last_used},not_supported,not_supported,{mfa},{key1},{key1_rotated},N/A,N/A,N/A,"
        f"{key2},{key2_rotated},N/A,N/A,N/A,false,N/A,false,N/A"
    )
    return root_row(parse_report(HEADER + "\n" + line + "\n"))


SINCE = parse_time("2026-08-19T12:00:00Z")


def kinds(row, since=SINCE, first_seen=None):
    return sorted(f.kind for f in check_root_row(row, since, first_seen))


def test_header_is_required():
    with pytest.raises(ValueError, match="not an IAM credential report"):
        parse_report("<root_account>,arn:aws:iam::111122223333:root,true\n")


def test_clean_root_has_no_findings():
    assert kinds(root()) == []


@pytest.mark.parametrize(
    "last_used,expected",
    [
        ("2026-08-19T12:00:00+00:00", ["root_password_used"]),  # at the start counts
        ("2026-08-19T11:59:59+00:00", []),
        ("no_information", []),
        ("N/A", []),
        ("not_supported", []),
    ],
)
def test_password_used_at_or_after_since(last_used, expected):
    assert kinds(root(last_used=last_used)) == expected


def test_without_since_any_recorded_use_counts():
    assert kinds(root(last_used="2016-10-06T15:47:11+00:00"), since=None) == ["root_password_used"]


def test_each_active_key_slot_is_its_own_finding_keyed_on_rotation():
    row = root(
        key1="true", key1_rotated="2020-01-01T00:00:00+00:00", key2="TRUE", key2_rotated="2021-01-01T00:00:00+00:00"
    )
    findings = check_root_row(row, SINCE)
    assert [f.kind for f in findings] == ["root_access_key_active"] * 2
    rotated = check_root_row(root(key1="true", key1_rotated="2025-01-01T00:00:00+00:00"), SINCE)
    assert rotated[0].id not in {f.id for f in findings}


@pytest.mark.parametrize(
    "password_enabled,last_used,key1,expected",
    [
        ("not_supported", "no_information", "false", ["root_mfa_disabled"]),
        ("true", "no_information", "false", ["root_mfa_disabled"]),
        ("false", "N/A", "false", []),
        ("not_supported", "N/A", "false", []),
        ("false", "N/A", "true", ["root_access_key_active", "root_mfa_disabled"]),
    ],
)
def test_mfa_disabled_only_when_root_has_credentials(password_enabled, last_used, key1, expected):
    assert kinds(root(password_enabled=password_enabled, last_used=last_used, mfa="false", key1=key1)) == expected


def test_mfa_disabled_id_follows_the_run_of_reports():
    row = root(mfa="false")
    first = check_root_row(row, SINCE, mfa_first_seen="2026-11-01T00:00:00Z")[0]
    again = check_root_row(row, SINCE, mfa_first_seen="2026-11-01T00:00:00Z")[0]
    later = check_root_row(row, SINCE, mfa_first_seen="2026-11-20T00:00:00Z")[0]
    assert first.id == again.id != later.id
    assert (first.severity, first.account_id, first.source) == ("critical", "111122223333", "credential_report")


def test_has_password():
    assert has_password({"password_enabled": "not_supported", "password_last_used": "2020-01-01T00:00:00+00:00"})
    assert not has_password({"password_enabled": "false", "password_last_used": "2020-01-01T00:00:00+00:00"})
