"""Benchmark: SendMessage on the SQS queue → the alert in Slack, with the poller running too.

    .venv/bin/python bench/queue_latency.py [--events 200] [--rate 2.0] [--channels 4]

Inputs (stated so nobody can game them): a moto server (SQS), the CloudTrail/IAM/STS stand-in,
the fake Slack Web API, and the real `rootcheck serve` process with ROOTCHECK_QUEUE_URL and a
10 s sweep interval over the same accounts. EVENTS root sign-ins are sent as EventBridge events at
RATE per second in total, spread over CHANNELS alert channels (each channel below Slack's pace of
1 message/s); each sign-in is also made visible to the poller, which must not post it twice.
Latency = Slack's message ts (the fake stamps the wall clock when it stores the post) minus the
moment just before SendMessage. Target: p99 < 2 s. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import machine, write_section  # noqa: E402
from tests.fakes.aws_standin import AwsStandIn, root_login_record  # noqa: E402
from tests.fakes.slack_api import FakeSlack  # noqa: E402
from tests.harness import Serve, serve_env, wait_for  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines


def envelope(record: dict) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "AWS Console Sign In via CloudTrail",
            "source": "aws.signin",
            "account": record["recipientAccountId"],
            "time": record["eventTime"],
            "region": "us-east-1",
            "resources": [],
            "detail": record,
        }
    )


def run(events: int, rate: float, channels: int) -> dict:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    sqs = boto3.client(
        "sqs", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    queue = sqs.create_queue(QueueName="rootcheck-bench")["QueueUrl"]
    work = Path(tempfile.mkdtemp(prefix="rootcheck-bench-"))
    with FakeSlack() as slack, AwsStandIn() as aws:
        names = [f"CBENCH{n:03d}" for n in range(channels)]
        accounts = [str(500000000001 + n) for n in range(channels)]
        lines = []
        for account, channel in zip(accounts, names):
            slack.add_channel(channel, members=["U0ADMIN"])
            aws.add_account(account, report_state="complete")
            lines.append(f'- id: "{account}"\n  channel: {channel}')
        (work / "accounts.yml").write_text("\n".join(lines) + "\n")
        env = serve_env(
            slack,
            aws.env() | {"AWS_ENDPOINT_URL_SQS": moto_url},
            f"sqlite:///{work}/rc.db",
            ROOTCHECK_ACCOUNTS_FILE=str(work / "accounts.yml"),
            ROOTCHECK_QUEUE_URL=queue,
            ROOTCHECK_SWEEP_INTERVAL="10s",
            ROOTCHECK_CHANNEL=names[0],
            ROOTCHECK_LOG_FORMAT="text",
        )
        with Serve(env, work / "serve.log"):
            sent: dict[str, float] = {}
            started = time.monotonic()
            for n in range(events):
                account = accounts[n % channels]
                record = root_login_record(account, event_id=str(uuid.uuid4()))
                time.sleep(max(0.0, started + n / rate - time.monotonic()))
                sent[record["eventID"]] = time.time()
                sqs.send_message(QueueUrl=queue, MessageBody=envelope(record))
                aws.add_events(account, "us-east-1", [record])  # the poller may see it too
            posts = wait_for(lambda: _posts(slack, names) if len(_posts(slack, names)) >= events else None, timeout=120)
            time.sleep(12)  # one more sweep: the poller must not post anything twice
            posts = _posts(slack, names)
    moto.stop()
    latencies = sorted(float(p["ts"]) - sent[p["event_id"]] for p in posts if p["event_id"] in sent)
    return {
        "events": events,
        "posted": len(posts),
        "unique": len({p["event_id"] for p in posts}),
        "p50": statistics.median(latencies),
        "p95": latencies[int(0.95 * (len(latencies) - 1))],
        "p99": latencies[int(0.99 * (len(latencies) - 1))],
        "max": latencies[-1],
    }


def _posts(slack: FakeSlack, channels: list[str]) -> list[dict]:
    found = []
    for channel in channels:
        for message in slack.messages(channel):
            event_id = (message.get("metadata") or {}).get("event_payload", {}).get("finding_id")
            if event_id:
                found.append({"ts": message["ts"], "event_id": _event_id(message)})
    return found


def _event_id(message: dict) -> str | None:
    for block in message.get("blocks", []):
        for field in block.get("fields", []) or []:
            if field.get("text", "").startswith("*Event*"):
                return field["text"].split("`")[1]
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--channels", type=int, default=4)
    args = parser.parse_args()
    result = run(args.events, args.rate, args.channels)
    verdict = "meets" if result["p99"] < 2.0 and result["unique"] == result["posted"] == args.events else "MISSES"
    body = (
        f"Command: `.venv/bin/python bench/queue_latency.py --events {args.events} --rate {args.rate} "
        f"--channels {args.channels}`\n\n{machine()}\n\n"
        f"{args.events} root sign-ins sent to SQS at {args.rate}/s over {args.channels} channels "
        f"({args.rate / args.channels:.2f} message/s per channel), poller sweeping every 10 s over the same "
        f"events.\n\n| posted | unique | p50 | p95 | p99 | max |\n|---|---|---|---|---|---|\n"
        f"| {result['posted']} | {result['unique']} | {result['p50']:.2f} s | {result['p95']:.2f} s | "
        f"{result['p99']:.2f} s | {result['max']:.2f} s |\n\nTarget p99 < 2 s: **{verdict}**."
    )
    write_section("Queue to Slack (issue 8)", body)
    print(body)


if __name__ == "__main__":
    main()
