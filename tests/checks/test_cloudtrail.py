"""Detector rules beyond the corpus: ids, account precedence, odd values, exclusions."""

from __future__ import annotations

import copy
import json

import pytest

from bot.checks.cloudtrail import check_record, skip_reason
from bot.checks.records import parse_document
from tests.conftest import CORPUS

LOGIN = json.loads((CORPUS / "01_root_console_login_success_no_mfa.json").read_text())
ACTIVITY = json.loads((CORPUS / "12_root_put_bucket_versioning.json").read_text())


def login(**changes):
    record = copy.deepcopy(LOGIN)
    record.update(changes)
    return record


def test_id_depends_only_on_account_event_id_and_kind():
    base = check_record(login())
    moved = check_record(login(sourceIPAddress="198.51.100.9", eventTime="2030-01-01T00:00:00Z"))
    other_event = check_record(login(eventID="another"))
    other_account = check_record(login(recipientAccountId="999999999999"))
    assert base.id == moved.id
    assert len({base.id, other_event.id, other_account.id}) == 3


def test_failed_and_successful_login_with_same_event_id_differ_by_kind():
    failed = check_record(login(responseElements={"ConsoleLogin": "Failure"}))
    assert failed.kind == "root_console_login_failed"
    assert failed.id != check_record(login()).id


def test_record_without_event_id_is_keyed_on_canonical_json():
    record = login()
    del record["eventID"]
    reordered = dict(reversed(list(record.items())))
    first, second = check_record(record), check_record(reordered)
    assert first.id == second.id and first.event_id is None
    assert check_record(login(eventID=None, userAgent="x")).id != check_record(login(eventID=None)).id


@pytest.mark.parametrize(
    "wrapper",
    [
        lambda r: {"Records": [r]},
        lambda r: {"Events": [{"EventId": "x", "CloudTrailEvent": json.dumps(r)}]},
        lambda r: {"EventId": "x", "CloudTrailEvent": json.dumps(r)},
        lambda r: {"source": "aws.signin", "detail-type": "AWS Console Sign In via CloudTrail", "detail": r},
        lambda r: [r],
    ],
)
def test_same_record_same_id_in_every_envelope(wrapper):
    bare = check_record(login())
    (record,) = list(parse_document(json.dumps(wrapper(login()))))
    assert check_record(record).id == bare.id


@pytest.mark.parametrize(
    "value,expected",
    [
        ("Yes", True),
        ("YES", True),
        ("yes", True),
        ("No", False),
        ("NO", False),
        (None, None),
        ("maybe", None),
        (True, True),
    ],
)
def test_mfa_used_is_case_insensitive(value, expected):
    finding = check_record(login(additionalEventData={"MFAUsed": value}))
    assert finding.mfa_used is expected
    assert finding.severity == ("high" if expected else "critical")


def test_additional_event_data_as_json_string():
    finding = check_record(login(additionalEventData=json.dumps({"MFAUsed": "Yes"})))
    assert (finding.mfa_used, finding.severity) == (True, "high")


def test_missing_outcome_is_a_success_with_unknown_mfa():
    finding = check_record(login(responseElements=None, additionalEventData={"MFAUsed": "Yes"}))
    assert (finding.kind, finding.severity, finding.mfa_used) == ("root_console_login", "critical", None)


def test_account_precedence_recipient_then_identity_then_path():
    assert check_record(login()).account_id == "111122223333"
    assert check_record(login(recipientAccountId="redacted")).account_id == "111122223333"
    anonymous = login(recipientAccountId=None, userIdentity={"type": "Root"})
    assert check_record(anonymous).account_id is None
    assert check_record(anonymous, account_hint="444455556666").account_id == "444455556666"
    assert check_record(anonymous, account_hint="not-an-id").account_id is None


def test_event_time_normalised_or_null():
    assert check_record(login(eventTime="2022-11-10T16:24:34.123+02:00")).event_time == "2022-11-10T14:24:34Z"
    assert check_record(login(eventTime="redacted")).event_time is None
    assert check_record(login(eventTime=12345)).event_time is None


@pytest.mark.parametrize(
    "identity",
    [
        {"type": "IAMUser", "userName": "root", "accountId": "111122223333"},
        {"type": "AssumedRole"},
        {"type": "FederatedUser"},
        {"type": "AWSService"},
    ],
)
def test_non_root_identities_are_never_findings(identity):
    assert check_record(login(userIdentity=identity)) is None


def test_root_type_compared_case_insensitively():
    assert check_record(login(userIdentity={"type": "root", "accountId": "111122223333"})) is not None


@pytest.mark.parametrize(
    "record,reason",
    [
        ({"eventName": "ConsoleLogin"}, "no userIdentity.type"),
        ({"userIdentity": "Root", "eventName": "X"}, "no userIdentity.type"),
        ({"userIdentity": {"type": "Root"}}, "no eventName"),
        ({"userIdentity": {"type": "Root"}, "eventName": ""}, "no eventName"),
        ("a string", "not a JSON object"),
    ],
)
def test_records_that_cannot_be_judged_are_skipped(record, reason):
    assert skip_reason(record) == reason
    assert check_record(record) is None


@pytest.mark.parametrize(
    "changes,severity",
    [
        ({}, "high"),
        ({"readOnly": True}, "medium"),
        ({"readOnly": "true"}, "medium"),
        ({"readOnly": None}, "high"),
        ({"errorCode": "AccessDenied"}, "medium"),
        ({"errorMessage": "nope"}, "medium"),
        ({"responseElements": {"Anything": "FAILURE"}}, "medium"),
    ],
)
def test_root_activity_severity(changes, severity):
    record = copy.deepcopy(ACTIVITY)
    record.update(changes)
    finding = check_record(record)
    assert (finding.kind, finding.severity) == ("root_activity", severity)


@pytest.mark.parametrize(
    "invoked_by,is_finding",
    [
        ("signin.amazonaws.com", True),
        ("SIGNIN.amazonaws.com", True),
        (None, True),
        ("elasticloadbalancing.amazonaws.com", False),
        ("AWS Internal", False),
    ],
)
def test_invoked_by(invoked_by, is_finding):
    record = copy.deepcopy(ACTIVITY)
    record["userIdentity"]["invokedBy"] = invoked_by
    assert (check_record(record) is not None) is is_finding


def test_service_event_is_not_root_activity():
    assert check_record(dict(ACTIVITY, eventType="AwsServiceEvent")) is None


@pytest.mark.parametrize(
    "field,value",
    [
        ("additionalEventData", [1, 2]),
        ("additionalEventData", "{not json"),
        ("responseElements", "Success"),
        ("sourceIPAddress", {"nested": True}),
        ("userAgent", 42),
        ("awsRegion", None),
        ("readOnly", "maybe"),
    ],
)
def test_odd_values_never_crash(field, value):
    finding = check_record(login(**{field: value}))
    assert finding is not None and finding.kind == "root_console_login"


def activity(identity: dict | None = None, **changes):
    record = copy.deepcopy(ACTIVITY)
    record.pop("sessionCredentialFromConsole", None)
    record["userIdentity"].pop("invokedBy", None)
    record["userIdentity"].update(identity or {})
    record.update(changes)
    return record


@pytest.mark.parametrize(
    "identity,changes,console",
    [
        ({}, {"sessionCredentialFromConsole": "true"}, True),
        ({}, {"sessionCredentialFromConsole": True}, True),
        ({"invokedBy": "signin.amazonaws.com"}, {}, True),
        ({}, {"sessionCredentialFromConsole": "false"}, False),
        ({}, {}, False),
    ],
)
def test_clues_record_the_console_markers(identity, changes, console):
    assert check_record(activity(identity, **changes)).clues.console is console


def test_clues_carry_key_read_only_and_failure_but_not_the_json_line():
    finding = check_record(activity({"accessKeyId": "ASIAKEY1"}, readOnly=True, errorCode="AccessDenied"))
    assert (finding.clues.access_key_id, finding.clues.read_only, finding.clues.failed) == ("ASIAKEY1", True, True)
    assert "clues" not in finding.to_dict()
    assert check_record(activity({"accessKeyId": ""})).clues.access_key_id is None
    failed_login = check_record(login(responseElements={"ConsoleLogin": "Failure"}))
    assert failed_login.clues.failed and not failed_login.clues.console
