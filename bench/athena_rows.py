"""`scan --athena`'s own work (rows → records → detectors → output) against `scan --events` on the same events.

    .venv/bin/python bench/athena_rows.py

Writes 1,000,000 root records (the root events of the corpus, `tests/archive.py`'s SEEDS, with new
event ids, times and accounts) twice, in a temporary folder:

  files    200 gzipped trail files of 5,000 records in the organization layout, read by
           `rootcheck scan --events DIR --format json` (the installed console script);
  results  one results file in Athena's CSV format holding the rows `scan --athena`'s query
           returns for the same records (`tests/scan/athena_fixtures.py`: the JSON SerDe's view of
           each record, the selected fields as one JSON array a row, quoted), read by what `scan --athena`
           runs once Athena has answered: `AthenaScan` over an engine that streams the local file
           in 1 MiB blocks (as from S3), `_emit` JSON lines and the summary, in a fresh Python.

Both print every finding as a JSON line (to /dev/null); a separate run of each checks that they
print the same findings. Wall times include start-up, best of 5, the two commands alternating.
Target: the results take no more time per record than the files. Writes docs/benchmarks.md's
"## Athena rows (issue: scan --athena)" section, with a cost note from AWS's public prices.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.archive_scan import measure  # noqa: E402
from bench.report import machine, write_section  # noqa: E402
from tests.archive import CORPUS, SEEDS  # noqa: E402
from tests.scan.athena_fixtures import result_row, results_file  # noqa: E402

TITLE = "Athena rows (scan --athena)"
COMMAND = ".venv/bin/python bench/athena_rows.py"
ROOTCHECK = Path(sys.executable).parent / "rootcheck"
RECORDS, PER_FILE, RUNS = 1_000_000, 5_000, 5
# The cost note's assumptions and AWS's public prices.
PRICE_PER_TB, GET_PER_1000 = 5.0, 0.0004  # Athena, S3 GET (US Regions)
ACCOUNTS, EVENTS_PER_ACCOUNT_MONTH, BYTES_PER_RECORD = 1_000, 1_000_000, 300  # gzipped, a real record
ACTIVE_REGIONS, FILES_PER_DAY = 4, 24 * 12  # CloudTrail delivers about every 5 minutes per account and Region
ORG, BUCKET = "o-a1b2c3d4e5", "org-trail"

# What `scan --athena` runs after the query: argv[1] is the local results file.
AFTER_QUERY = """\
import sys
from bot.aws.athena import QueryStatus
from bot.scan.athena import Query
from bot.scan.athena_scan import AthenaScan
from bot.scan.command import _emit, summary_lines
from bot.scan.offline import Window
from bot.scan.output import print_lines

class LocalResults:
    def start(self, sql, database):
        return "local"
    def status(self, query_id):
        return QueryStatus("SUCCEEDED", 0, "", sys.argv[1])
    def stop(self, query_id):
        pass
    def results(self, location):
        with open(location, "rb") as handle:
            while block := handle.read(1 << 20):
                yield block

scan = AthenaScan(LocalResults(), "db", [Query("local results", "")], Window(), warn=lambda line: None)
findings = _emit(scan.run(), "json")
print_lines(summary_lines(scan.summary))
sys.exit(1 if findings else 0)
"""

# An order-free digest of the JSON lines a command prints: the same findings give the same digest.
DIGEST = """\
import hashlib, sys
total, count = 0, 0
for line in sys.stdin.buffer:
    total = (total + int.from_bytes(hashlib.sha256(line).digest()[:8], "big")) % (1 << 64)
    count += 1
print(count, total)
"""


def _part(args: tuple[str, int, int]) -> tuple[int, int]:
    """Trail files `first`..`first + count` and their rows as Athena's CSV (no header): (records, gz bytes)."""
    folder, first, count = args
    root = Path(folder)
    templates = [json.loads((CORPUS / name).read_text()) for name in SEEDS]
    rng = random.Random(first)
    records = gz_bytes = 0
    with open(root / f"rows-{first:05d}.csv", "w", encoding="utf-8", newline="") as rows:
        for number in range(first, first + count):
            account, day = f"{100000000000 + number % 40:012d}", 1 + number % 28
            key = (
                f"AWSLogs/{ORG}/{account}/CloudTrail/us-east-1/2026/03/{day:02d}/"
                f"{account}_CloudTrail_us-east-1_202603{day:02d}T0000Z_{number:06d}.json.gz"
            )
            batch = []
            for index in range(PER_FILE):
                record = json.loads(json.dumps(templates[index % len(templates)]))
                record.update(
                    eventID=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    recipientAccountId=account,
                    eventTime=f"2026-03-{day:02d}T{index % 24:02d}:{index % 60:02d}:{index // 60 % 60:02d}Z",
                )
                if "accountId" in record["userIdentity"]:
                    record["userIdentity"]["accountId"] = account
                batch.append(record)
            path = root / "trail" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            data = gzip.compress(json.dumps({"Records": batch}).encode(), mtime=0)
            path.write_bytes(data)
            gz_bytes += len(data)
            rows.write(results_file([result_row(r, key, BUCKET) for r in batch], header=False))
            records += len(batch)
    return records, gz_bytes


def build(folder: Path) -> tuple[int, int, Path]:
    """Both copies of the records, written by two processes; (records, gzipped bytes, results file)."""
    files = RECORDS // PER_FILE
    parts = [(str(folder), 0, files // 2), (str(folder), files // 2, files - files // 2)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        counts = pool.map(_part, parts)
    results = folder / "results.csv"
    with results.open("w", encoding="utf-8", newline="") as out:
        out.write(results_file([]))
        for part in sorted(folder.glob("rows-*.csv")):
            out.write(part.read_text(encoding="utf-8"))
            part.unlink()
    return sum(c[0] for c in counts), sum(c[1] for c in counts), results


def digest(command: list[str]) -> str:
    producer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = subprocess.run(
        [sys.executable, "-c", DIGEST], stdin=producer.stdout, capture_output=True, text=True, check=True
    )
    producer.stdout.close()
    producer.wait()
    return out.stdout.strip()


def run(folder: Path) -> dict:
    started = time.perf_counter()
    records, gz_bytes, results = build(folder)
    print(
        f"generated {records:,} records: {gz_bytes / 1e6:.0f} MB of gzipped trail files, "
        f"{results.stat().st_size / 1e6:.0f} MB of results CSV, in {time.perf_counter() - started:.0f}s",
        flush=True,
    )
    files = [str(ROOTCHECK), "scan", "--events", str(folder / "trail"), "--format", "json"]
    rows = [sys.executable, "-c", AFTER_QUERY, str(results)]
    same = digest(files) == digest(rows)
    assert same, "the results and the files must give the same findings"
    walls: dict[str, list[float]] = {"files": [], "rows": []}
    cpu: dict[str, float] = {}
    for _ in range(RUNS):
        for name, command in (("files", files), ("rows", rows)):
            report = measure(command)
            assert report["status"] == 1 and f"{records} record(s)" in report["stderr"], report["stderr"]
            walls[name].append(report["wall"])
            if report["wall"] == min(walls[name]):
                cpu[name] = report["cpu"]
            print(f"{name}: {report['wall']:.2f}s (CPU {report['cpu']:.2f}s)", flush=True)
    best = {name: min(values) for name, values in walls.items()}
    return {
        "records": records,
        "gz_bytes": gz_bytes,
        "csv_bytes": results.stat().st_size,
        "walls": walls,
        "best": best,
        "cpu": cpu,
        "same": same,
        "us": {name: wall / records * 1e6 for name, wall in best.items()},
    }


def section(result: dict) -> str:
    us, best, records = result["us"], result["best"], result["records"]
    verdict = "meets" if us["rows"] <= us["files"] else "misses"
    per_record_gz = result["gz_bytes"] / records
    year_records = ACCOUNTS * EVENTS_PER_ACCOUNT_MONTH * 12
    year_tb = year_records * BYTES_PER_RECORD / 1e12
    year_files = ACCOUNTS * ACTIVE_REGIONS * FILES_PER_DAY * 365
    return f"""
Command: `{COMMAND}`

{machine()} Load average when it started: {host_load()}.

{records:,} root records (the corpus's root events with new ids, times and 40 accounts), stored twice:
as 200 gzipped trail files of 5,000 records ({result["gz_bytes"] / 1e6:.0f} MB) read by
`rootcheck scan --events DIR --format json`, and as one local results file in Athena's CSV format
({result["csv_bytes"] / 1e6:.0f} MB: the rows `scan --athena`'s query returns for them, one JSON array a row) read
by what `scan --athena` runs once Athena has answered (`AthenaScan` streaming the file in 1 MiB blocks,
the record rebuild, the detectors, `_emit` JSON lines, the summary). Every record is a finding, so both
print {records:,} JSON lines (to /dev/null); a separate run of each checked that they print the same
findings ({"yes" if result["same"] else "NO"}). Wall times include start-up; best of {RUNS}, the two alternating.

| input | wall (best) | per record | records/s | CPU (all processes) |
|---|---|---|---|---|
| trail files, `scan --events` | {best["files"]:.2f} s | {us["files"]:.2f} µs | {records / best["files"]:,.0f} | {result["cpu"]["files"]:.2f} s |
| Athena results CSV, `scan --athena` after the query | {best["rows"]:.2f} s | {us["rows"]:.2f} µs | {records / best["rows"]:,.0f} | {result["cpu"]["rows"]:.2f} s |

Per record the results take {us["rows"] / us["files"]:.2f}× the time of the files, which {verdict} the target
(no slower). All runs (s): files {", ".join(f"{w:.2f}" for w in result["walls"]["files"])}; results
{", ".join(f"{w:.2f}" for w in result["walls"]["rows"])}.

How: the query returns each row's fields as one JSON array, so a row is one line that orjson reads in
one call; the results file is cut at line ends into 1 MiB slices of bytes, judged on the same kind of
process pool as trail files; each row becomes a record with C-level `zip`/`compress` and goes through
the file scan's own record loop, with the garbage collector paused, as for a trail file. Measured with
callgrind on 5,000 records, the detectors cost the same on both paths (about 145,000 instructions a
record); what differs is getting the record: gunzip and one orjson call for a trail file's record
(about 31,000), against undoubling Athena's quotes, orjson and the rebuild in Python for a row
(about 60,000; Python's csv module over separate columns took 75,000).

**What a year of a {ACCOUNTS:,}-account organization trail costs to scan** (AWS's public prices: Athena
${PRICE_PER_TB:.0f} per TB scanned, at least 10 MB a query; S3 GET ${GET_PER_1000} per 1,000 requests). Athena reads
CloudTrail's gzipped JSON whole (no column pruning), so the cost is the trail's compressed size within the
partitions a query names. The generated records compress to {per_record_gz:.0f} bytes each because they repeat six
templates; real records vary and carry more (request parameters, resources, TLS details): take {BYTES_PER_RECORD} bytes. At {EVENTS_PER_ACCOUNT_MONTH:,}
management events per account per month, a year is {year_records / 1e9:.0f} billion records, about {year_tb:.1f} TB:
**about ${year_tb * PRICE_PER_TB:.0f}** for the whole organization in 12 monthly queries (the 10 MB minimum adds
nothing at this size), and about ${year_tb * PRICE_PER_TB / ACCOUNTS:.2f} for one account (`--account`: Athena reads only
that account's folders). Athena also reads every log file: CloudTrail delivers one about every 5 minutes per
account and active Region, so {ACCOUNTS:,} accounts × {ACTIVE_REGIONS} active Regions is about {year_files / 1e6:.0f} million
files a year, about **${year_files / 1000 * GET_PER_1000:.0f} of S3 GET requests**, billed to the trail bucket's owner:
often more than the scan itself. `--max-scan-gb` (default 100 GB, about $0.50) stops a scan before it
costs more than that; raise it on purpose for a year of an organization.
"""


def host_load() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    assert ROOTCHECK.exists(), f"{ROOTCHECK} missing: pip install -e . into this interpreter's environment"
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="rootcheck-athena-bench-") as tmp:
        result = run(Path(tmp))
    text = section(result)
    print(text)
    if not args.no_write:
        write_section(TITLE, text)
        print("wrote docs/benchmarks.md")
    return 0 if result["us"]["rows"] <= result["us"]["files"] else 1


if __name__ == "__main__":
    sys.exit(main())
