"""Every corpus file gives exactly the findings `expected.json` names (kind, severity, mfa_used)."""

from __future__ import annotations

import pytest

from bot.checks.cloudtrail import check_record, skip_reason
from bot.checks.credential_report import check_root_row, parse_report, root_row
from bot.checks.records import Skipped, parse_document
from bot.timeutil import parse_time
from tests.conftest import CORPUS, corpus_expectations

EXPECTED = corpus_expectations()
EVENT_FILES = sorted(name for name in EXPECTED if name.endswith(".json"))
REPORT_FILES = sorted(name for name in EXPECTED if name.endswith(".csv"))


def _project(finding, wanted: dict) -> dict:
    return {key: getattr(finding, key) for key in wanted}


@pytest.mark.parametrize("name", EVENT_FILES)
def test_event_file_gives_expected_findings(name):
    wanted = EXPECTED[name]["findings"]
    findings = []
    for item in parse_document((CORPUS / name).read_bytes()):
        if isinstance(item, Skipped) or skip_reason(item):
            continue
        finding = check_record(item)
        if finding:
            findings.append(finding)
    assert len(findings) == len(wanted), [f.kind for f in findings]
    for finding, expected in zip(findings, wanted, strict=True):
        assert _project(finding, expected) == expected


@pytest.mark.parametrize("name", REPORT_FILES)
def test_credential_report_gives_expected_findings(name):
    expectation = EXPECTED[name]
    row = root_row(parse_report((CORPUS / name).read_text()))
    assert row is not None
    findings = check_root_row(row, parse_time(expectation["since"]))
    assert sorted(f.kind for f in findings) == sorted(f["kind"] for f in expectation["findings"])


def test_truncated_file_cannot_be_parsed():
    with pytest.raises(ValueError, match="not valid JSON"):
        list(parse_document((CORPUS / "m06_truncated_invalid_json.txt").read_bytes()))


def test_corpus_covers_every_file_on_disk():
    on_disk = {p.name for p in CORPUS.iterdir() if p.is_file()} - {"expected.json", "README.md"}
    assert on_disk == set(EXPECTED)
