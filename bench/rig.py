"""Shared by the benchmarks that run the real `rootcheck serve`: a local SQS queue, and the sweeps the bot
recorded in its SQLite file (a benchmark reads them to say how long each sweep took)."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def sqs_queue(name: str) -> tuple[Any, Any, str, str]:
    """A moto server on 127.0.0.1 with one queue: (server, SQS client, queue URL, endpoint URL)."""
    import boto3  # noqa: PLC0415 - only the queue benchmarks need moto and boto3
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    url = f"http://{host}:{port}"
    sqs = boto3.client(
        "sqs", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return moto, sqs, sqs.create_queue(QueueName=name)["QueueUrl"], url


def sweep_durations(db: Path | str, since: float, until: float) -> list[float]:
    """Seconds each finished sweep took, of those that started between `since` and `until` (epoch seconds)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT started_at, finished_at FROM sweeps WHERE finished_at IS NOT NULL").fetchall()
    durations = []
    for started, finished in rows:
        start = datetime.fromisoformat(started).replace(tzinfo=UTC).timestamp()
        if since <= start <= until:
            durations.append(datetime.fromisoformat(finished).replace(tzinfo=UTC).timestamp() - start)
    return durations
