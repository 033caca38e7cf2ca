"""`rootcheck scan --events/--credential-report`, run as the installed console script."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from tests.conftest import CORPUS, json_lines

LOGIN = CORPUS / "01_root_console_login_success_no_mfa.json"


def test_corpus_file_prints_one_finding_and_exits_1(run_rootcheck):
    result = run_rootcheck("scan", "--events", str(LOGIN))
    assert result.returncode == 1, result.stderr
    (finding,) = json_lines(result.stdout)
    assert finding["kind"] == "root_console_login" and finding["severity"] == "critical"
    assert finding["account_id"] == "111122223333" and finding["mfa_used"] is False
    assert list(finding) == [
        "id",
        "kind",
        "severity",
        "account_id",
        "source",
        "event_id",
        "event_name",
        "event_time",
        "region",
        "source_ip",
        "user_agent",
        "mfa_used",
        "detail",
    ]


def test_clean_file_exits_0(run_rootcheck):
    result = run_rootcheck("scan", "--events", str(CORPUS / "07_iam_user_console_login_success_no_mfa.json"))
    assert (result.returncode, result.stdout) == (0, b"")


def test_same_event_wrapped_and_bare_is_printed_once(run_rootcheck):
    result = run_rootcheck(
        "scan",
        "--events",
        str(LOGIN),
        "--events",
        str(CORPUS / "m01_lookupevents_item_root_login.json"),
        "--events",
        str(CORPUS / "m02_eventbridge_envelope_root_login.json"),
    )
    assert result.returncode == 1
    assert len(json_lines(result.stdout)) == 1


def test_stdin_gzip_and_jsonl(run_rootcheck, tmp_path):
    records = [json.loads(LOGIN.read_text()), json.loads((CORPUS / "04_root_console_login_failure.json").read_text())]
    jsonl = "\n".join(json.dumps(r) for r in records).encode()
    packed = tmp_path / "odd-name.log"
    packed.write_bytes(gzip.compress(jsonl))
    from_stdin = run_rootcheck("scan", "--events", "-", stdin=jsonl)
    from_file = run_rootcheck("scan", "--events", str(packed))
    assert from_stdin.returncode == from_file.returncode == 1
    assert json_lines(from_stdin.stdout) == json_lines(from_file.stdout)
    assert {f["kind"] for f in json_lines(from_file.stdout)} == {"root_console_login", "root_console_login_failed"}


def test_truncated_file_is_named_the_rest_still_read_exit_2(run_rootcheck):
    bad = CORPUS / "m06_truncated_invalid_json.txt"
    result = run_rootcheck("scan", "--events", str(bad), "--events", str(LOGIN))
    assert result.returncode == 2
    assert len(json_lines(result.stdout)) == 1
    stderr = result.stderr.decode()
    assert str(bad) in stderr and "Traceback" not in stderr


def test_missing_file_and_corrupt_gzip_exit_2(run_rootcheck, tmp_path):
    corrupt = tmp_path / "broken.json.gz"
    corrupt.write_bytes(gzip.compress(LOGIN.read_bytes())[:-12])
    result = run_rootcheck(
        "scan", "--events", str(tmp_path / "nope.json"), "--events", str(corrupt), "--events", str(LOGIN)
    )
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert "nope.json: no such file" in stderr and "broken.json.gz" in stderr and "Traceback" not in stderr
    assert len(json_lines(result.stdout)) == 1


def test_folder_walk_skips_other_files_and_reads_the_rest(run_rootcheck, tmp_path):
    folder = tmp_path / "logs" / "deep"
    folder.mkdir(parents=True)
    shutil.copy(CORPUS / "m06_truncated_invalid_json.txt", folder)  # skipped: not an archive name
    shutil.copy(LOGIN, folder / "a.json")
    (folder / "b.json.gz").write_bytes(gzip.compress((CORPUS / "12_root_put_bucket_versioning.json").read_bytes()))
    (folder / "c.jsonl").write_text(json.dumps(json.loads((CORPUS / "04_root_console_login_failure.json").read_text())))
    result = run_rootcheck("scan", "--events", str(tmp_path / "logs"))
    assert result.returncode == 1, result.stderr
    assert sorted(f["kind"] for f in json_lines(result.stdout)) == [
        "root_activity",
        "root_console_login",
        "root_console_login_failed",
    ]


def test_partial_record_warns_without_changing_status(run_rootcheck, tmp_path):
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps({"Records": [json.loads(LOGIN.read_text()), {"eventName": "ConsoleLogin"}]}))
    result = run_rootcheck("scan", "--events", str(path))
    assert result.returncode == 1
    assert "record skipped: no userIdentity.type" in result.stderr.decode()


def test_credential_report_with_since(run_rootcheck):
    report = CORPUS / "credential_report_root_password_recent_no_mfa.csv"
    recent = run_rootcheck("scan", "--credential-report", str(report), "--since", "2026-08-19T12:00:00Z")
    later = run_rootcheck("scan", "--credential-report", str(report), "--since", "2026-09-01T00:00:00Z")
    assert sorted(f["kind"] for f in json_lines(recent.stdout)) == ["root_mfa_disabled", "root_password_used"]
    assert [f["kind"] for f in json_lines(later.stdout)] == ["root_mfa_disabled"]
    assert all(f["source"] == "credential_report" for f in json_lines(recent.stdout))


def test_csv_without_header_exits_2(run_rootcheck, tmp_path):
    path = tmp_path / "report.csv"
    path.write_text("<root_account>,arn:aws:iam::111122223333:root,x\n")
    result = run_rootcheck("scan", "--credential-report", str(path))
    assert result.returncode == 2
    assert "report.csv: not an IAM credential report" in result.stderr.decode()


def test_since_until_and_account_filters(run_rootcheck):
    corpus = str(CORPUS)
    everything = json_lines(run_rootcheck("scan", "--events", corpus).stdout)
    recent = json_lines(run_rootcheck("scan", "--events", corpus, "--since", "2026-01-01T00:00:00Z").stdout)
    old = json_lines(run_rootcheck("scan", "--events", corpus, "--until", "2020-01-01T00:00:00Z").stdout)
    one = json_lines(run_rootcheck("scan", "--events", corpus, "--account", "123456789012").stdout)
    undated = [f for f in everything if f["event_time"] is None]
    assert undated and all(f in recent and f in old for f in undated)  # unreadable eventTime: kept
    assert all(f["event_time"] is None or f["event_time"] >= "2026-01-01" for f in recent)
    assert all(f["event_time"] is None or f["event_time"] <= "2020-01-01" for f in old)
    assert one and all(f["account_id"] == "123456789012" for f in one)
    assert len(recent) < len(everything) and len(old) < len(everything)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--account", "12345"], "--account must be a 12-digit account id"),
        (["--since", "yesterday"], "--since: not a duration or ISO 8601 time"),
        (["--since", "1d", "--until", "2d"], "--since is after --until"),
    ],
)
def test_usage_errors_exit_2_with_one_line(run_rootcheck, args, message):
    result = run_rootcheck("scan", "--events", str(LOGIN), *args)
    assert result.returncode == 2
    assert message in result.stderr.decode() and "Traceback" not in result.stderr.decode()


def test_table_format_and_python_dash_m(run_rootcheck, tmp_path):
    import subprocess
    import sys

    table = run_rootcheck("scan", "--events", str(LOGIN), "--format", "table")
    assert table.returncode == 1 and b"root_console_login" in table.stdout and b"CRITICAL" in table.stdout
    module = subprocess.run(
        [sys.executable, "-m", "bot", "scan", "--events", str(LOGIN)], capture_output=True, cwd=tmp_path
    )
    assert module.returncode == 1 and json_lines(module.stdout)[0]["kind"] == "root_console_login"


def test_user_agent_markup_is_printed_literally_in_the_table(run_rootcheck, tmp_path):
    record = json.loads(LOGIN.read_text())
    record["userAgent"] = "[bold]x[/]"
    path = tmp_path / "ua.json"
    path.write_text(json.dumps(record))
    result = run_rootcheck("scan", "--events", str(path), "--format", "table")
    assert b"[bold]x[/]" in result.stdout


def test_table_shows_the_alerts_the_bot_would_post_and_json_stays_one_finding_per_line(run_rootcheck):
    day = CORPUS / "sessions" / "day.jsonl"
    table = run_rootcheck("scan", "--events", str(day), "--format", "table")
    out = table.stdout.decode()
    assert table.returncode == 1 and "7 alert(s) from 13 finding(s)" in out
    assert "Root console sign-in without MFA" in out and "After 3 failed sign-in(s)" in out
    assert "High-risk root call: StopLogging" in out and "3 failed root sign-ins" in out
    assert out.index("CRITICAL") < out.index("HIGH ") < out.index("MEDIUM")
    lines = json_lines(run_rootcheck("scan", "--events", str(day), "--format", "json").stdout)
    assert len(lines) == 13 and all("clues" not in line for line in lines)
