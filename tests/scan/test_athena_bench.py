"""bench/athena_rows.py in miniature: its stand-in for what `scan --athena` runs after the query must keep
working as the scan's code moves (it once called a method that had been renamed, and the benchmark
failed only after generating a million records)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench import athena_rows
from tests.scan.athena_fixtures import results_file

ROOTCHECK = Path(sys.executable).parent / "rootcheck"


def test_the_benchmarks_after_query_script_gives_the_file_scans_findings(tmp_path, monkeypatch):
    monkeypatch.setattr(athena_rows, "PER_FILE", 40)
    records, _ = athena_rows._part((str(tmp_path), 0, 3))
    results = tmp_path / "results.csv"
    results.write_text(results_file([]) + (tmp_path / "rows-00000.csv").read_text(), encoding="utf-8")

    def findings(command: list[str]) -> list[bytes]:
        done = subprocess.run(command, capture_output=True, timeout=120)
        assert done.returncode == 1, done.stderr.decode()[-2000:]  # 1: findings
        return sorted(done.stdout.splitlines())

    rows = findings([sys.executable, "-c", athena_rows.AFTER_QUERY, str(results)])
    files = findings([str(ROOTCHECK), "scan", "--events", str(tmp_path / "trail"), "--format", "json"])
    assert len(rows) == records == 120 and rows == files
