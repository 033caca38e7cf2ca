"""A synthetic CloudTrail archive in the real S3 layout, with known root events hidden in it.

    AWSLogs/<o-org>/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<stamp>_<rand>.json.gz

The ordinary events (IAM users, one of them called `root`, assumed roles, AWS services acting as
root, service events) and the seeded root events (console sign-ins with and without MFA, a failed
sign-in, root API calls) are the corpus records of `tests/fixtures/corpus/` with new eventIDs,
times, accounts and Regions. Add corrupt files (a truncated gzip, a gzip of truncated JSON) and
date folders outside the window, and `generate` tells what a scan must find.

Used by the tests and by `bench/archive_scan.py`; deterministic for a given seed.
"""

from __future__ import annotations

import gzip
import json
import random
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from bot.checks.fingerprint import finding_id

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
ORG = "o-a1b2c3d4e5"
REGIONS = ("us-east-1", "eu-west-1")
START = date(2026, 3, 2)

# Never findings: IAM users (one renamed `root`), assumed roles, AWS services acting as root.
ORDINARY = (
    "07_iam_user_console_login_success_no_mfa.json",
    "08_iam_user_console_login_failure_hidden_username.json",
    "13_root_invokedby_elb_service.json",
    "15_root_aws_service_event_constructed.json",
    "16_assumed_role_describe_table.json",
    "17_assumed_role_sso_console_login_mfaused_no.json",
    "21_assume_root_caller_event_docs_partial.json",
)
# Each gives exactly one finding; kind and severity come from the corpus's expected.json.
SEEDS = (
    "01_root_console_login_success_no_mfa.json",
    "02_root_console_login_success_mfa_YES_docs.json",
    "04_root_console_login_failure.json",
    "09_root_create_access_key_invokedby_signin.json",
    "11_root_readonly_list_access_keys.json",
    "12_root_put_bucket_versioning.json",
)

_EID, _TIME, _ACCT, _REGION, _RID, _IP = "@@EID@@", "@@TIME@@", "@@ACCT@@", "@@REGION@@", "@@RID@@", "@@IP@@"


@dataclass(frozen=True)
class Seeded:
    """One root event hidden in the archive, and the finding it must give."""

    id: str
    kind: str
    severity: str
    account_id: str
    event_id: str
    event_time: str
    path: str
    outside: bool  # in a date folder outside the window


@dataclass
class Archive:
    root: Path
    accounts: list[str]
    since: datetime  # the window the archive was built around
    until: datetime
    files: list[Path] = field(default_factory=list)  # readable files inside the window's folders
    outside_files: list[Path] = field(default_factory=list)  # readable files in out-of-window folders
    corrupt: list[Path] = field(default_factory=list)  # corrupt files inside the window's folders
    corrupt_outside: list[Path] = field(default_factory=list)
    digests: list[Path] = field(default_factory=list)
    records: int = 0  # records in `files`
    outside_records: int = 0
    seeded: list[Seeded] = field(default_factory=list)
    span: tuple[str, str] | None = None  # first and last eventTime in `files`
    outside_span: tuple[str, str] | None = None  # ... in `outside_files`

    def expected(
        self, since: datetime | None = None, until: datetime | None = None, accounts: frozenset[str] | None = None
    ) -> dict[str, str]:
        """finding id -> kind of what a scan with this window must print."""

        def kept(s: Seeded) -> bool:
            moment = datetime.fromisoformat(s.event_time.replace("Z", "+00:00"))
            return (
                (since is None or moment >= since)
                and (until is None or moment <= until)
                and (not accounts or s.account_id in accounts)
            )

        return {s.id: s.kind for s in self.seeded if kept(s)}

    def in_window(self) -> dict[str, str]:
        return self.expected(self.since, self.until)


def _templates(names: tuple[str, ...]) -> list[str]:
    """Each corpus record as JSON text with placeholders for what changes per event."""
    out = []
    for name in names:
        record = json.loads((CORPUS / name).read_text())
        record.update(
            eventID=_EID,
            eventTime=_TIME,
            awsRegion=_REGION,
            recipientAccountId=_ACCT,
            requestID=_RID,
            sourceIPAddress=_IP,
        )
        identity = record["userIdentity"]
        if "accountId" in identity:
            identity["accountId"] = _ACCT
        out.append(json.dumps(record, separators=(",", ":")))
        if name.startswith("07_"):  # an IAM user named root is not the root user
            identity.update(userName="root", arn=f"arn:aws:iam::{_ACCT}:user/root")
            out.append(json.dumps(record, separators=(",", ":")))
    return out


def _fill(template: str, event_id: str, when: str, account: str, region: str, rng: random.Random) -> str:
    """One event: a new eventID and time; a request id and source address as unique as real ones."""
    ip = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return (
        template.replace(_EID, event_id)
        .replace(_TIME, when)
        .replace(_ACCT, account)
        .replace(_REGION, region)
        .replace(_RID, f"{rng.getrandbits(64):016X}")
        .replace(_IP, ip)
    )


def _seed_expectations() -> list[tuple[str, str, str]]:
    expected = json.loads((CORPUS / "expected.json").read_text())
    return [(name, expected[name]["findings"][0]["kind"], expected[name]["findings"][0]["severity"]) for name in SEEDS]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%MZ")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Writer:
    def __init__(self, root: Path, rng: random.Random, level: int):
        self.root, self.rng, self.level = root, rng, level
        self.ordinary = _templates(ORDINARY)
        self.seeds = [(tpl, kind, sev) for tpl, (_, kind, sev) in zip(_templates(SEEDS), _seed_expectations())]

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def path(self, account: str, region: str, moment: datetime) -> Path:
        folder = (
            self.root
            / "AWSLogs"
            / ORG
            / account
            / "CloudTrail"
            / region
            / f"{moment:%Y}"
            / f"{moment:%m}"
            / f"{moment:%d}"
        )
        folder.mkdir(parents=True, exist_ok=True)
        rand = "".join(self.rng.choices(string.ascii_letters + string.digits, k=16))
        return folder / f"{account}_CloudTrail_{region}_{_stamp(moment)}_{rand}.json.gz"

    def records(
        self, day: date, account: str, region: str, count: int, seeds: list[tuple[int, datetime]]
    ) -> tuple[list[str], list[tuple[str, str, str, str, str]]]:
        """`count` records of one file; `seeds` are (template index, time) of root events to hide."""
        start = datetime.combine(day, time(0), UTC)
        times = sorted(start + timedelta(seconds=self.rng.randrange(86400)) for _ in range(count))
        lines = [_fill(self.rng.choice(self.ordinary), self.uid(), _iso(t), account, region, self.rng) for t in times]
        hidden = []
        for index, moment in seeds:
            template, kind, severity = self.seeds[index % len(self.seeds)]
            event_id = self.uid()
            position = self.rng.randrange(len(lines) + 1)
            lines.insert(position, _fill(template, event_id, _iso(moment), account, region, self.rng))
            hidden.append((kind, severity, account, event_id, _iso(moment)))
        self.times = [_iso(t) for t in times] + [h[4] for h in hidden]
        return lines, hidden

    def digest(self, account: str, region: str, day: date) -> Path:
        """A digest file: hashes of the day's log files, no records; walks and listings skip it."""
        folder = (
            self.root
            / "AWSLogs"
            / ORG
            / account
            / "CloudTrail-Digest"
            / region
            / f"{day:%Y}"
            / f"{day:%m}"
            / f"{day:%d}"
        )
        folder.mkdir(parents=True, exist_ok=True)
        moment = datetime.combine(day, time(23), UTC)
        path = folder / f"{account}_CloudTrail-Digest_{region}_org-trail_{region}_{moment:%Y%m%dT%H%M%SZ}.json.gz"
        body = {
            "awsAccountId": account,
            "digestStartTime": _iso(moment - timedelta(hours=1)),
            "digestEndTime": _iso(moment),
            "digestS3Bucket": "org-trail-bucket",
            "logFiles": [],
        }
        path.write_bytes(gzip.compress(json.dumps(body).encode(), mtime=0))
        return path

    def write(self, path: Path, lines: list[str], corrupt: str | None = None) -> None:
        text = ('{"Records":[' + ",".join(lines) + "]}").encode()
        if corrupt == "json":  # valid gzip, truncated JSON
            text = text[: len(text) // 2]
        data = gzip.compress(text, compresslevel=self.level, mtime=0)
        if corrupt == "gzip":  # the delivery stopped half-way
            data = data[: len(data) // 2]
        path.write_bytes(data)


def generate(
    root: str | Path,
    *,
    accounts: int = 3,
    days: int = 3,
    files: int = 12,
    records_per_file: int = 100,
    seed: int = 7,
    roots: int = 12,
    corrupt: bool = True,
    outside: bool = True,
    corrupt_outside: bool = True,
    digests: bool = True,
    start: date = START,
    level: int = 6,
) -> Archive:
    """Write an archive under `root` and say what it holds.

    `files` readable files (`records_per_file` records each, ordinary events plus `roots` seeded
    root events spread among them) are spread over `accounts` × `days` × two Regions. The window
    (`Archive.since`/`until`) runs from noon of the first day to noon of the last; two of the seeded
    events lie in those days' folders but outside the window's times. With `outside`, date folders
    five days before and after hold one more readable file each with a root event; with
    `corrupt_outside` the earlier one also holds a truncated gzip. `corrupt` adds a truncated gzip
    and a gzip of truncated JSON inside the window's first day. `digests` adds a CloudTrail-Digest
    file per account and day, as real archives have (they hold no records and are not read).
    """
    root = Path(root)
    rng = random.Random(seed)
    writer = _Writer(root, rng, level)
    ids = [str(100000000000 + (seed * 7919 + n * 104729) % 10**11) for n in range(accounts)]
    last = start + timedelta(days=days - 1)
    archive = Archive(
        root,
        ids,
        since=datetime.combine(start, time(12), UTC),
        until=datetime.combine(last, time(12), UTC),
    )
    slots = [
        (start + timedelta(days=d), account, region)  # days vary fastest: every day gets files
        for account in ids
        for region in REGIONS
        for d in range(days)
    ]

    # Which file hides which seeded event, and when it happened. The first two are outside the
    # window's times though inside its folders: one early on the first day, one late on the last.
    hidden: dict[int, list[tuple[int, datetime]]] = {}
    for n in range(roots):
        if n == 0:
            index = 0
            moment = archive.since - timedelta(hours=9)
        elif n == 1:
            index = next((i for i in range(files) if slots[i % len(slots)][0] == last), files - 1)
            moment = archive.until + timedelta(hours=9)
        else:
            index = rng.randrange(files)
            day = slots[index % len(slots)][0]
            moment = datetime.combine(day, time(0), UTC) + timedelta(seconds=rng.randrange(86400))
        if slots[index % len(slots)][0] != moment.date():  # too few files to reach that day
            moment = datetime.combine(slots[index % len(slots)][0], time(6), UTC)
        hidden.setdefault(index, []).append((n, moment))

    for index in range(files):
        day, account, region = slots[index % len(slots)]
        moment = datetime.combine(day, time(0), UTC) + timedelta(minutes=5 * (index // len(slots)) + 5)
        path = writer.path(account, region, moment)
        lines, found = writer.records(day, account, region, records_per_file, hidden.get(index, []))
        writer.write(path, lines)
        archive.files.append(path)
        archive.records += len(lines)
        archive.seeded += [_seeded(f, path, False) for f in found]
        archive.span = _widen(archive.span, writer.times)

    if digests:
        for account in ids:
            for d in range(days):
                archive.digests.append(writer.digest(account, REGIONS[0], start + timedelta(days=d)))
    if corrupt:
        for kind in ("gzip", "json"):
            path = writer.path(ids[0], REGIONS[0], datetime.combine(start, time(23, 55), UTC))
            lines, _ = writer.records(start, ids[0], REGIONS[0], max(records_per_file, 20), [])
            writer.write(path, lines, corrupt=kind)
            archive.corrupt.append(path)
    if outside:
        for day in (start - timedelta(days=5), last + timedelta(days=5)):
            moment = datetime.combine(day, time(10), UTC)
            path = writer.path(ids[-1], REGIONS[-1], moment)
            lines, found = writer.records(day, ids[-1], REGIONS[-1], records_per_file, [(roots, moment)])
            writer.write(path, lines)
            archive.outside_files.append(path)
            archive.outside_records += len(lines)
            archive.seeded += [_seeded(f, path, True) for f in found]
            archive.outside_span = _widen(archive.outside_span, writer.times)
        if corrupt_outside:
            moment = datetime.combine(start - timedelta(days=5), time(11), UTC)
            path = writer.path(ids[-1], REGIONS[-1], moment)
            writer.write(path, [], corrupt="gzip")
            archive.corrupt_outside.append(path)
    return archive


def _widen(span: tuple[str, str] | None, times: list[str]) -> tuple[str, str]:
    low, high = min(times), max(times)
    return (low, high) if span is None else (min(span[0], low), max(span[1], high))


def _seeded(found: tuple[str, str, str, str, str], path: Path, outside: bool) -> Seeded:
    kind, severity, account, event_id, when = found
    return Seeded(
        finding_id("cloudtrail", account, kind, event_id), kind, severity, account, event_id, when, str(path), outside
    )
