"""Benchmark (issue 4): Slack's 3-second deadline while AWS is slow.

Starts the fake Slack Web API and the AWS stand-in in this process (the stand-in answers every AWS
call after --latency seconds, 4 s by default), then the real `rootcheck serve` (HTTP mode) as a
subprocess. Once the first sweep has posted one alert per seeded account, it fires, all at once,
--commands signed `/rootcheck` requests (status, open and scan in turn) and --clicks signed
Acknowledge clicks on those alerts, and measures the HTTP response time of each POST: that is
when Bolt has acked, which Slack needs within 3 s. It repeats this --rounds times (in later rounds
the clicks are second clicks, which change nothing, and the scans find one running).

It also checks the work done after the acks: every alert acknowledged in place (chat.update),
every command answered through its response_url.

    .venv/bin/python bench/ack_latency.py              # the benchmark; writes its section of docs/benchmarks.md
    .venv/bin/python bench/ack_latency.py --accounts 10 --commands 10 --clicks 10 --rounds 1 --no-docs

Target: p99 < 300 ms and no request over 3 s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import cpu_model, write_section  # noqa: E402
from tests.fakes.aws_standin import AwsStandIn, root_login_record  # noqa: E402
from tests.fakes.slack_api import FakeSlack  # noqa: E402
from tests.harness import Serve, serve_env, wait_for  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Ack latency (issue 4)"
ADMIN = "U0ADMIN"
P99_TARGET, DEADLINE = 0.300, 3.0
FIRST_ACCOUNT = 400000000001


@dataclass
class Sample:
    kind: str  # status, open, scan, click
    round: int
    status: int
    seconds: float


@dataclass
class Result:
    samples: list[Sample] = field(default_factory=list)
    setup_seconds: float = 0.0
    alerts: int = 0
    acked: int = 0
    targets: list = field(default_factory=list)
    answered: int = 0
    commands_sent: int = 0
    ack_done_seconds: float = 0.0
    answers_done_seconds: float = 0.0
    server_ack_p99: str = "n/a"
    scans_started: int = 0
    scans_busy: int = 0
    scans_finished: int = 0
    scans_done_seconds: float = 0.0
    load_before: str = "n/a"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))  # nearest rank
    return ordered[rank]


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
        "mean": statistics.fmean(values) if values else float("nan"),
        "over_3s": sum(1 for v in values if v > DEADLINE),
    }


def run(args: argparse.Namespace) -> Result:
    result = Result()
    try:
        result.load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        pass
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="rootcheck-bench-ack-"))
    with FakeSlack() as fake, AwsStandIn(latency=args.latency) as aws:
        channels = [f"C0BENCH{i:03d}" for i in range(args.channels)]
        people = [f"U0BENCH{i:04d}" for i in range(args.commands * args.rounds)]  # one command per member
        for channel in channels:
            fake.add_channel(channel, members=[ADMIN, *people])
        accounts = []
        for i in range(args.accounts):
            account = str(FIRST_ACCOUNT + i)
            aws.add_account(account)
            aws.add_events(account, "us-east-1", [root_login_record(account)])
            accounts.append({"id": account, "channel": channels[i % len(channels)]})
        (work / "accounts.json").write_text(json.dumps(accounts))  # YAML is a superset of JSON
        env = serve_env(
            fake,
            aws.env(),
            f"sqlite:///{work / 'bench.db'}",
            ROOTCHECK_ACCOUNTS_FILE=str(work / "accounts.json"),
            ROOTCHECK_SWEEP_INTERVAL="1h",
            ROOTCHECK_CONCURRENCY=str(max(args.accounts, 16)),
            ROOTCHECK_LOG_FORMAT="json",
        )
        serve = Serve(env, log_path=work / "serve.log")
        serve.start()
        try:

            def posted():
                found = [
                    m
                    for c in channels
                    for m in fake.messages(c)
                    if (m.get("metadata") or {}).get("event_type") == "rootcheck_finding"
                ]
                return found if len(found) >= args.accounts else None

            alerts = wait_for(posted, timeout=args.setup_timeout, interval=0.2)
            result.alerts = len(alerts)
            result.setup_seconds = time.monotonic() - started
            print(
                f"{len(alerts)} alerts posted after {result.setup_seconds:.1f} s (AWS latency {args.latency} s)",
                file=sys.stderr,
            )
            targets = result.targets = [alerts[i % len(alerts)] for i in range(args.clicks)]
            verbs = ("status", "open", "scan")
            answer_urls: list[str] = []
            fire_started = time.monotonic()
            for round_number in range(1, args.rounds + 1):
                jobs = []
                for i in range(args.commands):
                    verb = verbs[i % len(verbs)]
                    url = fake.new_response_url()
                    answer_urls.append(url)
                    person = people[(round_number - 1) * args.commands + i]
                    jobs.append(
                        (
                            verb,
                            lambda v=verb, p=person, u=url, c=channels[i % len(channels)]: serve.command(
                                v, p, u, channel=c
                            ),
                        )
                    )
                for alert in targets:
                    channel = alert["channel"]
                    value = alert["metadata"]["event_payload"]["finding_id"]
                    jobs.append(
                        ("click", lambda v=value, t=alert["ts"], c=channel: serve.click(v, t, ADMIN, channel=c))
                    )
                result.samples += fire(jobs, round_number)
                time.sleep(args.pause)
            result.commands_sent = len(answer_urls)

            def all_acked():
                done = sum(1 for a in alerts if (fake.message(a["channel"], a["ts"]) or {}).get("update_count", 0) >= 1)
                result.acked = done
                return done >= len({(a["channel"], a["ts"]) for a in targets})

            try:
                wait_for(all_acked, timeout=60, interval=0.2)
            except TimeoutError:
                pass
            result.ack_done_seconds = time.monotonic() - fire_started

            def all_answered():
                result.answered = sum(1 for u in answer_urls if fake.responses(u))
                return result.answered >= len(answer_urls)

            try:
                wait_for(all_answered, timeout=60, interval=0.2)
            except TimeoutError:
                pass
            result.answers_done_seconds = time.monotonic() - fire_started
            started_scans = [u for u in answer_urls if "Scan started" in (fake.responses(u) or [{}])[0].get("text", "")]
            result.scans_started = len(started_scans)
            result.scans_busy = sum(
                1 for u in answer_urls if "already running" in (fake.responses(u) or [{}])[0].get("text", "")
            )
            try:
                wait_for(
                    lambda: all(len(fake.responses(u)) >= 2 for u in started_scans),
                    timeout=60 + 10 * args.latency,
                    interval=0.2,
                )
            except TimeoutError:
                pass
            result.scans_finished = sum(1 for u in started_scans if len(fake.responses(u)) >= 2)
            result.scans_done_seconds = time.monotonic() - fire_started
            status, body = serve.get("/metrics")
            result.server_ack_p99 = server_side(body.decode()) if status == 200 else "n/a"
        finally:
            serve.stop(timeout=10)
    return result


def fire(jobs: list, round_number: int) -> list[Sample]:
    """Run every job at the same moment (a barrier), each on its own thread; time each POST.

    The requests go out from a forked child process: its threads do not share a GIL with the fake
    Slack and the AWS stand-in in this process, which are busy with the bot's follow-up calls.
    """
    receive, send = multiprocessing.get_context("fork").Pipe(duplex=False)

    def child() -> None:
        barrier = threading.Barrier(len(jobs))

        def one(kind, job):
            barrier.wait()
            status, _, seconds = job()
            return Sample(kind, round_number, status, seconds)

        with ThreadPoolExecutor(len(jobs)) as pool:
            send.send([s.__dict__ for s in pool.map(lambda item: one(*item), jobs)])

    process = multiprocessing.get_context("fork").Process(target=child, daemon=True)
    process.start()
    samples = [Sample(**s) for s in receive.recv()]
    process.join()
    return samples


def server_side(metrics: str) -> str:
    """The bot's own histogram of request-to-ack time: the share under 250 ms."""
    buckets = dict(re.findall(r'rootcheck_ack_latency_seconds_bucket\{le="([^"]+)"\} (\S+)', metrics))
    total = float(buckets.get("+Inf", 0))
    under = float(buckets.get("0.25", 0))
    return f"{under:.0f} of {total:.0f} under 250 ms" if total else "n/a"


def machine() -> str:
    cpu = cpu_model("unknown CPU")
    return f"{os.cpu_count()} CPUs (nproc {nproc()}), {cpu}, Python {platform.python_version()}, {platform.system()}"


def nproc() -> str:
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(os.cpu_count())


def report(result: Result, args: argparse.Namespace, command: str) -> tuple[str, bool]:
    groups = {
        "all": [s.seconds for s in result.samples],
        "slash commands": [s.seconds for s in result.samples if s.kind != "click"],
        "button clicks": [s.seconds for s in result.samples if s.kind == "click"],
    }
    for verb in ("status", "open", "scan"):
        groups[f"… `{verb}`"] = [s.seconds for s in result.samples if s.kind == verb]
    bad_status = [s for s in result.samples if s.status != 200]
    overall = summary(groups["all"])
    ok = overall["p99"] < P99_TARGET and overall["over_3s"] == 0 and not bad_status
    date = subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"Slack needs every slash command and button click acknowledged within 3 s. With the AWS stand-in "
        f"answering every call after **{args.latency:g} s**, {args.commands} signed `/rootcheck` commands "
        f"(`status`, `open`, `scan` in turn, each from another channel member) and {args.clicks} signed "
        f"Acknowledge clicks on real posted alerts were fired at the real `rootcheck serve` (HTTP mode, "
        f"waitress) **all at the same moment**, {args.rounds} time(s). Each figure is the HTTP response time "
        f"of one POST as the client saw it, which is when Bolt has acked.",
        "",
        "| requests | n | p50 | p95 | p99 | max | over 3 s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, values in groups.items():
        s = summary(values)
        lines.append(
            f"| {name} | {s['n']} | {ms(s['p50'])} | {ms(s['p95'])} | {ms(s['p99'])} | {ms(s['max'])} "
            f"| {s['over_3s']} |"
        )
    lines += [
        "",
        f"**Target: p99 < 300 ms, none over 3 s: {'met' if ok else 'NOT met'}** "
        f"(p99 {ms(overall['p99'])}, {overall['over_3s']} over 3 s, {len(bad_status)} non-200 answers).",
        "",
        f"- Work done after the acks: {result.acked} of {len({(a['channel'], a['ts']) for a in result.targets})} "
        f"clicked alerts acknowledged in place (`chat.update`) within {result.ack_done_seconds:.1f} s of the "
        f"first burst; {result.answered} of {result.commands_sent} commands answered through `response_url` "
        f"within {result.answers_done_seconds:.1f} s. {result.scans_started} scan(s) started, "
        f"{result.scans_busy} were told one was running, and {result.scans_finished} started scan(s) had "
        f"posted their summary {result.scans_done_seconds:.1f} s after the first burst (a sweep waits for AWS).",
        f"- The bot's own `rootcheck_ack_latency_seconds` histogram: {result.server_ack_p99}.",
        f"- Setup: {args.accounts} accounts with one root console sign-in each, alerting into "
        f"{args.channels} channels; the first sweep (every AWS call {args.latency:g} s) posted all alerts "
        f"{result.setup_seconds:.0f} s after start.",
        f"- Machine: {machine()}; load average when the run started: {result.load_before}.",
        f"- Date: {date}.",
        f"- Command: `{command}`",
        "",
        "Why it holds: the listeners call `ack()` first and hand everything else (AWS, the database, Slack "
        "calls) to a work pool, and Bolt runs them in the request thread (`process_before_response`), so a "
        "burst only queues behind request parsing and signature checks (waitress has 16 threads), never "
        "behind AWS or Slack. What this benchmark found and `bot/serve/app.py` now avoids: Bolt's default "
        "single-workspace authorization called `auth.test` on the request path for every request until one "
        "had succeeded, so the first burst after start-up waited on Slack (p99 1.05 s, 9 requests over 1 s); "
        "and handing each listener to a second pool, then polling every 10 ms for its ack, made the median "
        "2-3x higher. The requests are sent from a separate process; on this 2-CPU machine the client, the "
        f"fakes and the bot (which updates the {args.clicks} acknowledged alerts at the same time) share the CPUs.",
    ]
    return "\n".join(lines), ok


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, default=50, help="accounts seeded with a root login (one alert each)")
    ap.add_argument("--channels", type=int, default=10, help="alert channels (Slack allows 1 post/s per channel)")
    ap.add_argument("--commands", type=int, default=50, help="concurrent slash commands per round")
    ap.add_argument("--clicks", type=int, default=50, help="concurrent Acknowledge clicks per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between rounds")
    ap.add_argument("--latency", type=float, default=4.0, help="seconds the AWS stand-in takes for every call")
    ap.add_argument("--setup-timeout", type=float, default=180.0)
    ap.add_argument("--no-docs", action="store_true", help=f"do not write {DOCS.relative_to(ROOT)}")
    ap.add_argument("--json", type=Path, help="also write the raw samples here")
    args = ap.parse_args(argv)
    command = " ".join([".venv/bin/python", "bench/ack_latency.py", *map(shlex.quote, argv or sys.argv[1:])])

    result = run(args)
    body, ok = report(result, args, command)
    print(body)
    if args.json:
        args.json.write_text(json.dumps([s.__dict__ for s in result.samples]))
    if not args.no_docs:
        write_section(SECTION.removeprefix("## "), path=DOCS, body=body)
        print(f"wrote the section '{SECTION}' of {DOCS.relative_to(ROOT)}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
