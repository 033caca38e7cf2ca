"""`AthenaScan` in-process with a scripted engine: slicing, the pool, polling, the cap."""

from __future__ import annotations

import json

import pytest

from bot.aws.athena import QueryStatus
from bot.scan.athena import Query
from bot.scan.athena_rows import read_rows, slices
from bot.scan.athena_scan import AthenaScan
from bot.scan.offline import Window
from tests.conftest import CORPUS
from tests.scan.athena_fixtures import result_row, results_file

KEY = "AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/us-east-1/2026/03/03/f.json.gz"


def _results(count: int) -> bytes:
    """`count` root rows, some with quotes, commas, newlines and non-ASCII text in their values."""
    base = json.loads((CORPUS / "12_root_put_bucket_versioning.json").read_text())
    rows = []
    for number in range(count):
        record = dict(base, eventID=f"e{number}", userAgent=f'agent "{number}",\nzweite Zeile ü €' * (number % 3))
        rows.append(result_row(record, KEY, "trail"))
    return results_file(rows).encode()


class Scripted:
    """An engine whose queries end as scripted, with the given results."""

    def __init__(self, data: bytes, statuses: list[list[QueryStatus]], block: int = 997):
        self.data, self.statuses, self.block = data, statuses, block
        self.started, self.stopped, self.polls = [], [], 0

    def start(self, sql: str, database: str) -> str:
        self.started.append(sql)
        return f"q{len(self.started)}"

    def status(self, query_id: str) -> QueryStatus:
        script = self.statuses[len(self.started) - 1]
        self.polls += 1
        return script.pop(0) if len(script) > 1 else script[0]

    def stop(self, query_id: str) -> None:
        self.stopped.append(query_id)

    def results(self, location: str):
        for start in range(0, len(self.data), self.block):  # blocks cut anywhere, even inside a character
            yield self.data[start : start + self.block]


def _done(scanned: int = 0) -> QueryStatus:
    return QueryStatus("SUCCEEDED", scanned, "", "s3://results/q.csv")


def test_slices_end_between_records_and_lose_nothing():
    data = _results(400)
    parts = list(slices((data[i : i + 313] for i in range(0, len(data), 313)), 4096))
    assert len(parts) > 5 and b"".join(parts) == data
    header, _, first = parts[0].partition(b"\n")
    assert sum(len(list(read_rows(header, part))) for part in [first, *parts[1:]]) == 400


@pytest.mark.parametrize("workers", [1, 2])
def test_a_large_result_is_judged_in_slices_on_the_pool_with_the_same_findings(workers):
    data = _results(3000)
    scan = AthenaScan(
        Scripted(data, [[_done()]]),
        "db",
        [Query("q", "SELECT")],
        Window(),
        warn=lambda line: None,
        workers=workers,
        slice_bytes=50_000,
    )
    found = list(scan.run_queries())
    assert len(found) == len({f.id for f in found}) == 3000
    assert scan.summary.documents == 1 and scan.summary.records == 3000 and not scan.summary.errors
    assert {f.user_agent for f in found} >= {'agent "1",\nzweite Zeile ü €'}


def test_polls_back_off_and_the_cap_counts_every_query():
    sleeps: list[float] = []
    engine = Scripted(
        _results(1),
        [
            [
                QueryStatus("QUEUED", 0, "", None),
                QueryStatus("RUNNING", 10, "", None),
                QueryStatus("RUNNING", 20, "", None),
                _done(60 * 10**9),
            ],
            [_done()],
        ],
    )
    scan = AthenaScan(
        engine,
        "db",
        [Query("one", "S1"), Query("two", "S2")],
        Window(),
        warn=lambda line: None,
        max_bytes=50 * 10**9,
        sleep=sleeps.append,
    )
    assert len(list(scan.run_queries())) == 1  # the first query's rows are kept: they are paid for
    assert sleeps == [0.25, 0.4, 0.6400000000000001] and engine.started == ["S1"]
    (error,) = scan.summary.errors
    assert error.startswith(
        "athena: query 2 of 2 (two): not started: the scan has read 60.00 GB, over --max-scan-gb 50"
    )
    assert scan.cost_line() == "athena: ran 1 of 2 queries, 60.00 GB scanned, about $0.30 at $5/TB"
