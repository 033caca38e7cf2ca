"""Forensic `rootcheck scan` over an organization's CloudTrail archive: on disk and in S3.

Everything runs the installed console script on a generated archive (`tests/archive.py`) in the
real S3 layout; S3 is a moto server on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import os
import pty
import select
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from tests.archive import generate
from tests.conftest import json_lines

WINDOW = ["--since", "2026-03-02T12:00:00Z", "--until", "2026-03-04T12:00:00Z"]
FINDING_KEYS = [
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


@pytest.fixture(scope="session")
def archive(tmp_path_factory):
    """Three accounts, three days, corrupt files inside the window and in a folder outside it."""
    built = generate(tmp_path_factory.mktemp("archive"), accounts=3, days=3, files=24, records_per_file=150)
    assert [built.since.isoformat(), built.until.isoformat()] == [
        "2026-03-02T12:00:00+00:00",
        "2026-03-04T12:00:00+00:00",
    ]  # WINDOW
    return built


@pytest.fixture(scope="session")
def clean_window_archive(tmp_path_factory):
    """Corrupt only in a date folder outside the window."""
    return generate(
        tmp_path_factory.mktemp("clean"), accounts=2, days=3, files=10, records_per_file=50, seed=11, corrupt=False
    )


def _scan(run_rootcheck, *args, env=None):
    result = run_rootcheck("scan", "--format", "json", "--workers", "2", *args, env=env)
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr, stderr
    return result, json_lines(result.stdout), stderr


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _summary(stderr: str) -> dict[str, str]:
    lines = [line.strip() for line in stderr.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("rootcheck: read "))
    out = {"read": lines[start]}
    for line in lines[start + 1 :]:
        key, _, value = line.partition(": ")
        if key != "not read":  # names the paths, which differ between a folder and S3
            out[key] = value
    return out


def _counts(text: str) -> dict[str, int]:
    return {name: int(n) for name, n in (part.rsplit(" ", 1) for part in text.split(", "))}


# --- on disk ---------------------------------------------------------------------------------


def test_finds_exactly_the_seeded_root_events_and_names_corrupt_files(run_rootcheck, archive):
    result, findings, stderr = _scan(run_rootcheck, "--events", str(archive.root))
    assert {f["id"]: f["kind"] for f in findings} == archive.expected()
    assert len(findings) == len(archive.seeded) == 14
    by_id = {s.id: s for s in archive.seeded}
    for finding in findings:
        seeded = by_id[finding["id"]]
        assert (finding["severity"], finding["account_id"], finding["event_id"], finding["event_time"]) == (
            seeded.severity,
            seeded.account_id,
            seeded.event_id,
            seeded.event_time,
        )
    assert {"root_console_login", "root_console_login_failed", "root_activity"} == {f["kind"] for f in findings}
    assert {f["mfa_used"] for f in findings if f["kind"] == "root_console_login"} == {True, False}
    # the corrupt files are named with the reason; everything else was still read
    assert result.returncode == 2
    errors = _errors(stderr)
    assert len(errors) == 3
    for path, reason in zip(
        archive.corrupt + archive.corrupt_outside, ["corrupt gzip", "not valid JSON", "corrupt gzip"]
    ):
        assert any(str(path) in line and reason in line for line in errors), (path, errors)
    summary = _summary(stderr)
    files = len(archive.files) + len(archive.outside_files) + 3
    assert summary["read"] == (
        f"rootcheck: read {files} file(s), {archive.records + archive.outside_records} record(s), 3 input error(s)"
    )  # digest files are not read, nothing skipped
    assert "record skipped" not in stderr


def test_serial_and_pooled_scans_agree(run_rootcheck, archive):
    _, pooled, _ = _scan(run_rootcheck, "--events", str(archive.root))
    serial = json_lines(run_rootcheck("scan", "--events", str(archive.root), "--workers", "1").stdout)
    assert sorted(pooled, key=lambda f: f["id"]) == sorted(serial, key=lambda f: f["id"])


def test_window_prunes_date_folders_before_opening_and_filters_by_event_time(run_rootcheck, archive):
    result, findings, stderr = _scan(run_rootcheck, "--events", str(archive.root), *WINDOW)
    expected = archive.in_window()
    assert {f["id"]: f["kind"] for f in findings} == expected
    # the time filter mattered: seeded events inside the window's folders but outside its times
    in_folders = {s.id for s in archive.seeded if not s.outside}
    assert in_folders - set(expected), "the archive must hide events outside the window's times"
    # the out-of-window folders were never opened: their corrupt file is not reported, their records
    # not counted; the corrupt files inside the window still are, and decide the exit status
    errors = _errors(stderr)
    assert len(errors) == 2 and all(any(str(p) in e for e in errors) for p in archive.corrupt)
    assert not any(str(archive.corrupt_outside[0]) in e for e in errors)
    assert _summary(stderr)["read"] == (
        f"rootcheck: read {len(archive.files) + 2} file(s), {archive.records} record(s), 2 input error(s)"
    )
    assert result.returncode == 2


def test_exit_status_reflects_only_files_inside_the_window(run_rootcheck, clean_window_archive):
    archive = clean_window_archive
    everything, _, stderr_all = _scan(run_rootcheck, "--events", str(archive.root))
    assert everything.returncode == 2 and str(archive.corrupt_outside[0]) in stderr_all
    windowed, findings, stderr = _scan(run_rootcheck, "--events", str(archive.root), *WINDOW)
    assert windowed.returncode == 1, stderr
    assert not _errors(stderr)
    assert {f["id"] for f in findings} == set(archive.in_window())


def test_summary_on_stderr_and_pure_json_lines_on_stdout(run_rootcheck, archive):
    result, findings, stderr = _scan(run_rootcheck, "--events", str(archive.root))
    for line in result.stdout.decode().splitlines():
        assert list(json.loads(line)) == FINDING_KEYS
    summary = _summary(stderr)
    low = min(archive.span[0], archive.outside_span[0])
    high = max(archive.span[1], archive.outside_span[1])
    assert summary["time span"] == f"{low} to {high}"
    assert _counts(summary["findings by kind"]) == dict(Counter(s.kind for s in archive.seeded))
    assert _counts(summary["findings by account"]) == dict(Counter(s.account_id for s in archive.seeded))
    assert b"rootcheck:" not in result.stdout and b"error" not in result.stdout


def test_progress_bar_on_a_terminal(rootcheck_bin, archive, tmp_path):
    """stderr on a terminal shows a live bar (files, records); stdout, a pipe, still gets JSON lines."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROOTCHECK_", "SLACK_"))}
    env.update(HOME=str(tmp_path), TERM="xterm", COLUMNS="160")
    process = subprocess.Popen(
        [rootcheck_bin, "scan", "--events", str(archive.root), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
        cwd=tmp_path,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    stdout = process.stdout.read()
    assert process.wait(timeout=60) == 2
    terminal = b"".join(chunks).decode(errors="replace")
    assert "━" in terminal and "files" in terminal and "records" in terminal
    assert "rootcheck: read" in terminal
    assert {f["id"] for f in json_lines(stdout)} == set(archive.expected())


def test_offline_scan_imports_neither_boto3_nor_slack(archive, tmp_path):
    code = (
        "import sys\n"
        "from bot.cli import main\n"
        f"status = main(['scan', '--events', {str(archive.root)!r}, '--workers', '2', '--format', 'json'])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'slack_sdk', 'slack_bolt', 'bot.aws'))\n"
        "sys.stderr.write('LOADED=' + ','.join(loaded) + '\\n')\n"
        "sys.exit(status)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "LOADED=\n" in result.stderr.decode()
    assert len(json_lines(result.stdout)) == len(archive.seeded)


# --- memory ----------------------------------------------------------------------------------

MAIN_RSS = """
import json, resource, sys
from bot.cli import main
status = main(sys.argv[1:])
print(json.dumps({"status": status, "main_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "workers_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}), file=sys.stderr)
"""


LAUNCH = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def _rss(args: list[str], env: dict | None = None) -> dict:
    """Peak RSS (KiB) of the scan's main process and of its largest worker process.

    Resource accounting inside a fresh process that runs the scan: RUSAGE_SELF is the main
    process, RUSAGE_CHILDREN its workers. It is started through a small launcher because Linux
    carries the exec-ing parent's peak RSS into the child's ru_maxrss: started straight from
    this test process, the scan would report pytest's own peak.
    """
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            LAUNCH,
            sys.executable,
            "-c",
            MAIN_RSS,
            "scan",
            "--format",
            "json",
            "--workers",
            "2",
            *args,
        ],
        capture_output=True,
        env=env,
        timeout=120,
    )
    report = json.loads(result.stderr.decode().strip().splitlines()[-1])
    assert report["status"] == 1, result.stderr.decode()
    return report


@pytest.fixture(scope="module")
def growing_archives(tmp_path_factory):
    """The same kind of archive at 1× and 4× the files (2,000 records, ~150 KiB gzipped each)."""
    small = generate(
        tmp_path_factory.mktemp("small"),
        accounts=2,
        days=2,
        files=12,
        records_per_file=2000,
        seed=3,
        roots=4,
        corrupt=False,
        outside=False,
    )
    large = generate(
        tmp_path_factory.mktemp("large"),
        accounts=2,
        days=2,
        files=48,
        records_per_file=2000,
        seed=3,
        roots=4,
        corrupt=False,
        outside=False,
    )
    return small, large


def test_memory_stays_flat_as_the_archive_grows(growing_archives):
    small, large = (_rss(["--events", str(a.root)]) for a in growing_archives)
    assert large["main_kb"] <= small["main_kb"] * 1.15, (small, large)
    assert large["workers_kb"] <= small["workers_kb"] * 1.15, (small, large)


# --- S3 --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_s3():
    """One moto server for the session; its endpoint and a boto3 client for uploads."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._server.server_port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    yield endpoint, client
    server.stop()


def _upload(client, bucket: str, prefix: str, root: Path) -> None:
    existing = {b["Name"] for b in client.list_buckets()["Buckets"]}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.put_object(Bucket=bucket, Key=prefix + path.relative_to(root).as_posix(), Body=path.read_bytes())


def _s3_env(endpoint: str) -> dict:
    return {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture(scope="session")
def s3_archive(moto_s3, archive):
    endpoint, client = moto_s3
    _upload(client, "org-trail", "exported/", archive.root)
    return "s3://org-trail/exported/", _s3_env(endpoint)


def _as_s3(path: Path, root: Path, url: str) -> str:
    return url + path.relative_to(root).as_posix()


def test_s3_prefix_gives_the_same_findings_as_the_folder(run_rootcheck, archive, s3_archive):
    url, env = s3_archive
    local, local_findings, local_err = _scan(run_rootcheck, "--events", str(archive.root))
    remote, remote_findings, remote_err = _scan(run_rootcheck, "--events", url, env=env)
    assert remote.returncode == local.returncode == 2
    assert sorted(remote_findings, key=lambda f: f["id"]) == sorted(local_findings, key=lambda f: f["id"])
    assert {f["id"] for f in remote_findings} == set(archive.expected())
    errors = _errors(remote_err)
    assert len(errors) == 3
    for path in archive.corrupt + archive.corrupt_outside:
        assert any(_as_s3(path, archive.root, url) in line for line in errors), errors
    assert _summary(remote_err) == _summary(local_err)


def test_s3_window_prunes_before_fetching(run_rootcheck, archive, s3_archive):
    url, env = s3_archive
    result, findings, stderr = _scan(run_rootcheck, "--events", url, *WINDOW, env=env)
    assert {f["id"] for f in findings} == set(archive.in_window())
    assert not any(_as_s3(archive.corrupt_outside[0], archive.root, url) in e for e in _errors(stderr))
    assert len(_errors(stderr)) == 2 and result.returncode == 2


def test_s3_prefix_without_slash_and_one_named_object(run_rootcheck, archive, s3_archive):
    url, env = s3_archive
    _, findings, _ = _scan(run_rootcheck, "--events", url.rstrip("/"), env=env)
    assert {f["id"] for f in findings} == set(archive.expected())
    seeded = archive.seeded[0]
    one, findings, stderr = _scan(run_rootcheck, "--events", _as_s3(Path(seeded.path), archive.root, url), env=env)
    assert one.returncode == 1, stderr
    assert seeded.id in {f["id"] for f in findings}
    assert _summary(stderr)["read"].startswith("rootcheck: read 1 file(s)")


@pytest.mark.parametrize(
    "spec,message",
    [
        ("s3://no-such-bucket-rc/exported/", "s3://no-such-bucket-rc/exported/: NoSuchBucket"),
        (
            "s3://org-trail/wrong-prefix/",
            "s3://org-trail/wrong-prefix/: no objects under this prefix in bucket org-trail",
        ),
        ("s3://", "s3://: no bucket name"),
    ],
)
def test_s3_errors_name_the_bucket_and_prefix(run_rootcheck, s3_archive, spec, message):
    _, env = s3_archive
    result, findings, stderr = _scan(run_rootcheck, "--events", spec, env=env)
    assert (result.returncode, findings) == (2, [])
    (line,) = _errors(stderr)
    assert line.startswith(f"error: {message}")


def test_s3_without_credentials_is_one_line(run_rootcheck, s3_archive, tmp_path):
    url, env = s3_archive
    env = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"))
    result, _, stderr = _scan(run_rootcheck, "--events", url, env=env)
    assert result.returncode == 2
    assert _errors(stderr) == [
        f"error: {url}: no AWS credentials found: set AWS_PROFILE or "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with an instance or task role"
    ]


def test_s3_memory_stays_flat_as_the_archive_grows(moto_s3, tmp_path):
    """Objects are fetched a few at a time: holding the 4× archive's bytes at once would add ~40 MB.

    Stored uncompressed (gzip level 0) so the bytes in flight are large next to the process, and
    enough of them at 1× that the allocator has reached its steady state.
    """
    endpoint, client = moto_s3
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(_s3_env(endpoint))
    archives = [
        generate(
            tmp_path / name,
            accounts=2,
            days=2,
            files=files,
            records_per_file=250,
            seed=5,
            roots=4,
            corrupt=False,
            outside=False,
            digests=False,
            level=0,
        )
        for name, files in (("small", 48), ("large", 192))
    ]
    reports = []
    for name, archive in zip(("small", "large"), archives):
        _upload(client, "growing", f"{name}/", archive.root)
        reports.append(_rss(["--events", f"s3://growing/{name}/"], env=env))
    small, large = reports
    assert large["main_kb"] <= small["main_kb"] * 1.15, (small, large)
    assert large["workers_kb"] <= small["workers_kb"] * 1.15, (small, large)


# --- S3 with IAM enforced: a real AccessDenied ------------------------------------------------


@pytest.fixture(scope="module")
def locked_s3(tmp_path_factory):
    """A moto server that enforces IAM after its first 10 calls, which set up a bucket and 3 users."""
    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["INITIAL_NO_AUTH_ACTION_COUNT"] = "10"
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, log.read_text()
                time.sleep(0.05)
        kw = dict(
            endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        s3, iam = boto3.client("s3", **kw), boto3.client("iam", **kw)
        s3.create_bucket(Bucket="locked-trail")
        s3.put_object(
            Bucket="locked-trail",
            Key="logs/AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/f.json",
            Body=(Path(__file__).parent / "fixtures/corpus/01_root_console_login_success_no_mfa.json").read_bytes(),
        )
        keys = {}
        for user in ("nobody", "lister", "getter"):
            iam.create_user(UserName=user)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = {
                "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL_S3": endpoint,
            }
        for user, action in (("lister", "s3:ListBucket"), ("getter", "s3:GetObject")):
            iam.put_user_policy(
                UserName=user,
                PolicyName="only",
                PolicyDocument=json.dumps(
                    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}
                ),
            )
        yield keys
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_s3_access_denied_names_bucket_prefix_and_permissions(run_rootcheck, locked_s3):
    listing, _, stderr = _scan(run_rootcheck, "--events", "s3://locked-trail/logs/", env=locked_s3["nobody"])
    assert listing.returncode == 2
    assert _errors(stderr) == [
        "error: s3://locked-trail/logs/: AccessDenied listing prefix 'logs/' of bucket locked-trail: Access Denied "
        "(needs s3:ListBucket on arn:aws:s3:::locked-trail and s3:GetObject on arn:aws:s3:::locked-trail/logs/*)"
    ]
    reading, _, stderr = _scan(run_rootcheck, "--events", "s3://locked-trail/logs/", env=locked_s3["lister"])
    assert reading.returncode == 2
    (error,) = _errors(stderr)
    assert error.startswith("error: s3://locked-trail/logs/: AccessDenied reading s3://locked-trail/logs/AWSLogs/")
    assert "s3:GetObject on arn:aws:s3:::locked-trail/logs/*" in error


def test_s3_named_object_is_read_without_list_permission(run_rootcheck, locked_s3):
    key = "s3://locked-trail/logs/AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/f.json"
    result, findings, stderr = _scan(run_rootcheck, "--events", key, env=locked_s3["getter"])
    assert result.returncode == 1, stderr
    assert [f["kind"] for f in findings] == ["root_console_login"]


# --- the fast path is the general path, faster ------------------------------------------------


def test_fast_record_loop_gives_exactly_what_the_general_path_gives(tmp_path):
    """Every corpus record, plus odd variants, inside one trail file: same counts, times, findings, warnings."""
    from bot.checks.records import parse_document
    from bot.models import Document
    from bot.scan.offline import DocumentResult, Window, _check_item, analyse_events

    corpus = Path(__file__).parent / "fixtures" / "corpus"
    records = []
    for path in sorted(corpus.glob("[0-9]*.json")):
        record = json.loads(path.read_text())
        records.append(record)
        identity = record.get("userIdentity")
        if isinstance(identity, dict):
            for kind in (" ROOT ", "root", "", None, 7, True, "AWSService"):
                records.append({**record, "userIdentity": {**identity, "type": kind}, "eventID": f"{kind}-{path.name}"})
        records.append({**record, "eventName": 5})
        records.append({**record, "eventTime": 1700000000})
        records.append({"Records": [record]})
        records.append({"CloudTrailEvent": json.dumps(record)})
        records.append({"detail": record})
        records.append({**record, "Events": "not a list"})
    records += [[records[0], [records[1]]], 5, "x", None, {}, {"userIdentity": "Root", "eventName": "x"}]
    path = tmp_path / "trail.json"
    path.write_text(json.dumps({"Records": records}))
    window = Window()

    fast = analyse_events(Document(name=str(path), path=str(path)), window)
    general = DocumentResult(str(path))
    for item in parse_document(path.read_bytes()):
        _check_item(item, None, window, general)
    assert fast.records > 100 and fast.findings
    assert fast == general
