"""Envelopes, JSON Lines and archive paths."""

from __future__ import annotations

import json
from datetime import date

import pytest

from bot.checks.records import Skipped, account_from_path, date_from_path, parse_document

RECORD = {"eventName": "ConsoleLogin", "userIdentity": {"type": "Root"}, "eventID": "e1"}


def test_trail_file_yields_each_record():
    doc = json.dumps({"Records": [RECORD, dict(RECORD, eventID="e2")]})
    assert [r["eventID"] for r in parse_document(doc)] == ["e1", "e2"]


def test_json_lines_of_mixed_envelopes_with_a_bad_line():
    lines = [
        json.dumps(RECORD),
        "{broken",
        json.dumps({"detail": dict(RECORD, eventID="e3")}),
        "",
        json.dumps({"CloudTrailEvent": json.dumps(dict(RECORD, eventID="e4"))}),
    ]
    items = list(parse_document("\n".join(lines).encode()))
    assert [i["eventID"] for i in items if isinstance(i, dict)] == ["e1", "e3", "e4"]
    assert [i.reason for i in items if isinstance(i, Skipped)] == ["line 2 is not valid JSON"]


def test_truncated_cloudtrail_event_string_is_a_partial_record():
    items = list(parse_document(json.dumps({"Events": [{"CloudTrailEvent": '{"eventName": "Con'}]})))
    assert items == [Skipped("CloudTrailEvent is not valid JSON")]


@pytest.mark.parametrize("text", ["", "not json at all", '{"eventName": ', "[1, 2"])
def test_unparseable_documents_raise(text):
    with pytest.raises(ValueError):
        list(parse_document(text))


def test_scalars_inside_a_trail_file_are_skipped():
    items = list(parse_document(json.dumps({"Records": [RECORD, 5, "x"]})))
    assert items[0] == RECORD and all(isinstance(i, Skipped) for i in items[1:])


@pytest.mark.parametrize(
    "path,account",
    [
        ("bucket/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/28/f.json.gz", "111122223333"),
        ("AWSLogs/o-abc123def4/444455556666/CloudTrail/eu-west-1/2026/01/02/f.json.gz", "444455556666"),
        ("/tmp/logs/f.json", None),
        ("AWSLogs/12345/CloudTrail/x", None),
    ],
)
def test_account_from_path(path, account):
    assert account_from_path(path) == account


def test_date_from_path():
    assert date_from_path("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/28/f.json.gz") == date(2026, 11, 28)
    assert date_from_path("AWSLogs/111122223333/CloudTrail/us-east-1/2026/13/28/f.json.gz") is None
    assert date_from_path("plain/2026/11/28/f.json") is None
