"""Benchmark (issue 12, item 7): what the cursor overlap costs, 60 minutes against 20, and what it buys.

A steady sweep looks up each account's us-east-1 events from its cursor (the previous sweep's end) minus
`bot.serve.monitor.OVERLAP`, so with sweeps every 5 minutes its window is [now - 5 min - overlap, now].
Two lookups read that window (`bot.aws.collect`): `Username=root` (the root user's events, a page or
so) and `EventName=ConsoleLogin`, which also returns every IAM user's console sign-in: a busy account
re-reads overlap x sign-ins/hour records, 50 a LookupEvents page, each page paced by rootcheck at one per
1.05 s per account and Region (AWS allows 2/s). Other Regions only run the root lookup, so the overlap
hardly matters there.

Every sweep below is rootcheck's own lookup code, `bot.sweeper.Sweeper.sweep` (the collector, the record
parsing and the checks of `bot.service.sweep`), the call the monitor makes, with the window's start passed
in as `Monitor._start` computes it (cursor - overlap), against the AWS stand-in
(`tests/fakes/aws_standin.py`, LookupEvents pages of 50 as AWS). One account per sign-in rate holds
IAM-user ConsoleLogin events spread evenly over the last --hours hours, plus three root events (root
sign-ins 3 and 41 minutes ago, a root API call 12 minutes ago).

1. counts and CPU: the stand-in as its own process (no latency, no rate limit, so the sweep is not
   paced and only rootcheck's CPU is in this process's getrusage); per rate and overlap, --repeat steady
   sweeps of that one account after a warm-up (credentials assumed, clients made): LookupEvents calls
   (the stand-in's count), records read and parsed (every page's records, each unwrapped and checked),
   root findings, rootcheck CPU ms (median).
2. paced wall: the stand-in in this process with AWS's 2 LookupEvents/s per account and Region and
   --latency per call, rootcheck at its default pacing; one sweep of every (rate <= --paced-max,
   overlap) account at once; wall = from the sweep's start to that account's us-east-1 lookups being
   complete. For every rate the model (calls - 1) x 1.05 s + latency is shown too.
3. late events: simulated 5-minute sweeps over a timeline (window [cursor - overlap, sweep time],
   cursor = the previous sweep's time, as the monitor does); root sign-ins become visible in the stand-in
   --late minutes after their eventTime. Checks that the one 45 minutes late is found with 60 and missed
   with 20.

Then a 10,000-account estimate per --mix (account count per sign-in rate): calls and records per sweep,
the extra CPU (extra records x the busiest account's measured CPU per extra record), and the wall bound
T_min + the slowest account's paced chain, with T_min = calls x --fleet-latency / concurrency as in
bench/org_sweep.py.

    .venv/bin/python bench/overlap.py                  # about a minute; writes docs/benchmarks.md
    .venv/bin/python bench/overlap.py --repeat 1 --paced-max 60 --no-docs   # a quick look
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import math
import os
import platform
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import cpu_model, write_section_keeping_notes  # noqa: E402
from bot.aws.collect import PAGE_SIZE, Collector  # noqa: E402
from bot.checks.cloudtrail import check_record  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.models import SIGNIN_REGION, Account, Window  # noqa: E402
from bot.serve.monitor import OVERLAP  # noqa: E402
from bot.sweeper import Sweeper  # noqa: E402
from tests.fakes.aws_standin import AwsStandIn, root_login_record  # noqa: E402

SECTION = "Cursor overlap cost (issue 12)"
INTERVAL = timedelta(minutes=5)  # ROOTCHECK_SWEEP_INTERVAL's default
PACE = inspect.signature(Collector).parameters["lookup_interval"].default  # seconds between an account's calls
AWS_PACE = 0.5  # AWS's own limit, 2 LookupEvents/s per account and Region
SWEEP_BUDGET = 300.0  # seconds: the default interval
FIRST_ACCOUNT = 230000000000
USERS = 200  # IAM users signing in, in turn


# --------------------------------------------------------------------------- events


def signin_record(account: str, when: datetime, user: str) -> dict:
    """An IAM user's successful console sign-in, as CloudTrail writes it."""
    record = root_login_record(account, when, mfa_used=True)
    record["userIdentity"] = {
        "type": "IAMUser",
        "principalId": f"AIDASTANDIN{user.upper()}"[:21],
        "arn": f"arn:aws:iam::{account}:user/{user}",
        "accountId": account,
        "userName": user,
    }
    return record


def root_call_record(account: str, when: datetime) -> dict:
    """A root API call (a finding of its own kind, found by the Username=root lookup only)."""
    record = root_login_record(account, when)
    record.update(
        eventSource="iam.amazonaws.com",
        eventName="CreateAccessKey",
        eventType="AwsApiCall",
        requestParameters={},
        responseElements=None,
        additionalEventData=None,
    )
    return record


def account_events(account: str, rate: float, now: datetime, hours: float) -> list[dict]:
    """`rate` IAM-user sign-ins an hour, evenly over the `hours` before `now`, and three root events."""
    count = int(rate * hours)
    step = 3600.0 / rate if rate else 0.0
    events = [
        signin_record(account, now - timedelta(seconds=step * (i + 0.5)), f"user{i % USERS:03d}") for i in range(count)
    ]
    events += [
        root_login_record(account, now - timedelta(minutes=3)),
        root_call_record(account, now - timedelta(minutes=12)),
        root_login_record(account, now - timedelta(minutes=41)),
    ]
    return events


def in_window(records: list[dict], window: Window) -> dict[str, int]:
    """What each lookup should return for `window` (the stand-in keeps whole seconds, both ends inclusive)."""
    start, end = int(window.start.timestamp()), int(window.end.timestamp())
    inside = [
        r
        for r in records
        if start <= int(datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()) <= end
    ]
    return {
        "signins": sum(r["userIdentity"]["type"] == "IAMUser" for r in inside),
        "root": sum(r["userIdentity"]["type"] == "Root" for r in inside),
    }


# --------------------------------------------------------------------------- one sweep through rootcheck


def use_env(env: dict[str, str]) -> None:
    """Point boto3 in this process at a stand-in (before a Sweeper is made)."""
    for key in [k for k in os.environ if k.startswith(("AWS_", "ROOTCHECK_", "SLACK_"))]:
        del os.environ[key]
    os.environ.update(env)


def sweep(sweeper: Sweeper, accounts: list[Account], windows: dict[str, Window]) -> dict[str, dict]:
    """One sweep of `accounts`, each over its window; per account what was read and when it was complete."""
    started, lock = time.perf_counter(), threading.Lock()
    seen: dict[str, dict[str, Any]] = {
        a.id: {"records": 0, "findings": set(), "errors": [], "done_s": None, "skipped": 0} for a in accounts
    }

    def on_part(evidence, found) -> None:
        with lock:
            mine = seen[evidence.account.id]
            mine["records"] += len(evidence.records)
            mine["findings"] |= {f.id for f in found}
            mine["errors"] += [e.line() for e in evidence.errors]
            if evidence.part == "lookups" and evidence.region == SIGNIN_REGION:
                mine["done_s"] = time.perf_counter() - started
                mine["skipped"] += evidence.skipped

    sweeper.sweep(accounts, lambda a, region: windows[a.id], lambda a: False, lambda a: None, lambda a: None, on_part)
    for account_id, mine in seen.items():
        if mine["errors"]:
            raise RuntimeError(f"account {account_id}: {mine['errors'][0]}")
    return seen


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- 1. counts and CPU


def start_standin(config: Path, work: Path, *options: str) -> tuple[subprocess.Popen, dict]:
    manifest, log = work / "manifest.json", open(work / "standin.stderr", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.aws_standin",
            "--port",
            "0",
            "--config",
            str(config),
            "--manifest",
            str(manifest),
            *options,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,
    )
    log.close()
    if not process.stdout.readline().strip():
        raise RuntimeError(f"the stand-in did not start (see {work / 'standin.stderr'})")
    while not manifest.exists() or not manifest.read_text().rstrip().endswith("}"):
        time.sleep(0.05)
    return process, json.loads(manifest.read_text())


def stop_standin(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.stdout.close()


def lookups_at(url: str) -> dict[str, int]:
    """LookupEvents calls so far per account, and every other call, at the stand-in."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    with opener.open(url + "/_standin/stats", timeout=30) as answer:
        calls = json.loads(answer.read())["calls"]
    out: dict[str, int] = {"other": 0}
    for key, n in calls.items():
        service, action, account = key.split(":")
        if (service, action) == ("cloudtrail", "LookupEvents"):
            out[account] = out.get(account, 0) + n
        else:
            out["other"] += n
    return out


def counts_and_cpu(args: argparse.Namespace, rates: list[float], overlaps: list[timedelta]) -> list[dict]:
    now = datetime.now(UTC).replace(microsecond=0)
    accounts = {rate: Account(str(FIRST_ACCOUNT + i), name=f"busy-{rate:g}") for i, rate in enumerate(rates)}
    records = {rate: account_events(accounts[rate].id, rate, now, args.hours) for rate in rates}
    expected = {
        (rate, overlap): in_window(records[rate], Window(now - INTERVAL - overlap, now))
        for rate in rates
        for overlap in overlaps
    }
    cells: dict[tuple[float, timedelta], dict] = {}
    with tempfile.TemporaryDirectory(prefix="rootcheck-overlap-") as tmp:
        work = Path(tmp)
        config = work / "standin.json"
        config.write_text(
            json.dumps(
                {
                    "accounts": [
                        {"id": accounts[rate].id, "alias": accounts[rate].name, "events": {"us-east-1": records[rate]}}
                        for rate in rates
                    ]
                }
            )
        )
        del records  # not rootcheck's: kept, its objects would slow every garbage collection of the sweeps
        gc.collect()
        standin, manifest = start_standin(config, work, "--latency", "0", "--rate", "0")
        try:
            use_env({**manifest["env"], "HOME": str(work)})
            sweeper = Sweeper(load_settings(), lookup_interval=0.0)  # counted, not paced (phase 2 paces)
            sweep(sweeper, list(accounts.values()), {a.id: Window(now - INTERVAL, now) for a in accounts.values()})
            for rep in range(args.repeat):
                for rate in rates:
                    account = accounts[rate]
                    for overlap in overlaps if rep % 2 == 0 else overlaps[::-1]:  # no order bias
                        window = Window(now - INTERVAL - overlap, now)
                        before, cpu, wall = lookups_at(manifest["url"]), cpu_seconds(), time.perf_counter()
                        seen = sweep(sweeper, [account], {account.id: window})[account.id]
                        cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
                        after = lookups_at(manifest["url"])
                        cell = cells.setdefault(
                            (rate, overlap),
                            {
                                "rate": rate,
                                "overlap_min": overlap.total_seconds() / 60,
                                "window_min": (window.end - window.start).total_seconds() / 60,
                                **expected[(rate, overlap)],
                                "calls": [],
                                "records": [],
                                "findings": [],
                                "cpu_ms": [],
                                "unpaced_wall_s": [],
                                "other_calls": 0,
                            },
                        )
                        cell["calls"].append(after.get(account.id, 0) - before.get(account.id, 0))
                        cell["records"].append(seen["records"])
                        cell["findings"].append(len(seen["findings"]))
                        cell["cpu_ms"].append(1000 * cpu)
                        cell["unpaced_wall_s"].append(wall)
                        cell["other_calls"] += after["other"] - before["other"]
        finally:
            stop_standin(standin)
    out = []
    for (rate, overlap), cell in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        for key in ("calls", "records", "findings"):
            if len(set(cell[key])) != 1:
                raise RuntimeError(f"{rate:g}/h, {overlap}: {key} differ between repeats: {cell[key]}")
            cell[key] = cell[key][0]
        cell["cpu_ms_runs"] = cell["cpu_ms"]
        cell["cpu_ms"] = statistics.median(cell["cpu_ms_runs"])
        cell["unpaced_wall_s"] = statistics.median(cell["unpaced_wall_s"])
        # Both us-east-1 lookups share the account's pace: every call waits its turn after the one before.
        cell["model_wall_s"] = (cell["calls"] - 1) * PACE + args.latency
        cell["aws_pace_wall_s"] = (cell["calls"] - 1) * AWS_PACE + args.latency
        out.append(cell)
    return out


# --------------------------------------------------------------------------- 2. paced wall


def paced_wall(args: argparse.Namespace, rates: list[float], overlaps: list[timedelta]) -> dict:
    rates = [r for r in rates if r <= args.paced_max]
    now = datetime.now(UTC).replace(microsecond=0)
    pairs = [(rate, overlap) for rate in rates for overlap in overlaps]
    accounts = {pair: Account(str(FIRST_ACCOUNT + 100 + i), name=f"paced-{i}") for i, pair in enumerate(pairs)}
    with (
        AwsStandIn(latency=args.latency, rate_per_second=2.0) as standin,
        tempfile.TemporaryDirectory(prefix="rootcheck-overlap-") as tmp,
    ):
        for (rate, _), account in accounts.items():
            standin.add_account(account.id, alias=account.name)
            standin.add_events(account.id, "us-east-1", account_events(account.id, rate, now, args.hours))
        use_env({**standin.env(), "HOME": tmp})
        sweeper = Sweeper(load_settings())  # rootcheck's own pacing
        everyone = list(accounts.values())
        sweep(sweeper, everyone, {a.id: Window(now - INTERVAL, now) for a in everyone})  # warm-up
        time.sleep(PACE + 0.1)  # the pace's last slot of the warm-up has passed
        calls = {a.id: standin.stats.count("cloudtrail", "LookupEvents", a.id) for a in everyone}
        throttled = standin.stats.throttled_total
        windows = {account.id: Window(now - INTERVAL - overlap, now) for (_, overlap), account in accounts.items()}
        started = time.perf_counter()
        seen = sweep(sweeper, everyone, windows)
        total = time.perf_counter() - started
        rows = [
            {
                "rate": rate,
                "overlap_min": overlap.total_seconds() / 60,
                "calls": standin.stats.count("cloudtrail", "LookupEvents", account.id) - calls[account.id],
                "wall_s": seen[account.id]["done_s"],
            }
            for (rate, overlap), account in accounts.items()
        ]
        snapshot = standin.stats.snapshot()
    return {
        "rows": rows,
        "sweep_s": total,
        "throttled": snapshot["throttled_total"] - throttled,
        "max_rate": max(snapshot["max_rate"].values(), default=0),
    }


# --------------------------------------------------------------------------- 3. late events


def late_events(args: argparse.Namespace, overlaps: list[timedelta]) -> dict:
    """Simulated 5-minute sweeps; each root sign-in appears in the stand-in `late` minutes after its eventTime."""
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)
    occurred = base + 4 * INTERVAL + timedelta(seconds=30)  # just after a sweep
    last = occurred + INTERVAL + max(overlaps) + timedelta(minutes=max(args.late)) + 2 * INTERVAL
    accounts = {overlap: Account(str(FIRST_ACCOUNT + 200 + i), name=f"late-{i}") for i, overlap in enumerate(overlaps)}
    events = {
        overlap: [
            (late, root_login_record(account.id, occurred + timedelta(seconds=i))) for i, late in enumerate(args.late)
        ]
        for overlap, account in accounts.items()
    }
    ids = {
        overlap: {check_record(record, account.id).id: late for late, record in events[overlap]}
        for overlap, account in accounts.items()
    }
    found: dict[timedelta, dict[float, float]] = {overlap: {} for overlap in overlaps}  # late -> minutes after visible
    cursor = {overlap: base - INTERVAL for overlap in overlaps}
    added: set[tuple] = set()
    sweeps = 0
    with (
        AwsStandIn(latency=0.0, rate_per_second=None) as standin,
        tempfile.TemporaryDirectory(prefix="rootcheck-overlap-") as tmp,
    ):
        for account in accounts.values():
            standin.add_account(account.id, alias=account.name)
        use_env({**standin.env(), "HOME": tmp})
        sweeper = Sweeper(load_settings(), lookup_interval=0.0)
        at = base
        while at <= last:
            for overlap, account in accounts.items():  # what has become visible by this sweep
                for late, record in events[overlap]:
                    if (overlap, late) not in added and occurred + timedelta(minutes=late) <= at:
                        standin.add_events(account.id, "us-east-1", [record])
                        added.add((overlap, late))
            windows = {accounts[o].id: Window(cursor[o] - o, at) for o in overlaps}  # as Monitor._start
            seen = sweep(sweeper, list(accounts.values()), windows)
            for overlap, account in accounts.items():
                for finding in seen[account.id]["findings"]:
                    late = ids[overlap].get(finding)
                    if late is not None and late not in found[overlap]:
                        found[overlap][late] = (at - occurred).total_seconds() / 60 - late
                cursor[overlap] = at  # every sweep succeeds: the cursor moves to its end
            at += INTERVAL
            sweeps += 1
    return {
        "sweeps": sweeps,
        "late": list(args.late),
        "found": {
            f"{o.total_seconds() / 60:g}": {f"{late:g}": found[o].get(late) for late in args.late} for o in overlaps
        },
    }


# --------------------------------------------------------------------------- the fleet


def record_cost(cells: list[dict], overlaps: list[timedelta]) -> float:
    """CPU ms per record re-read, its share of a page's call included: the busiest account's extra CPU over its
    extra records, between the widest and the narrowest overlap."""
    o_lo, o_hi = (o.total_seconds() / 60 for o in (min(overlaps), max(overlaps)))
    rate = max(c["rate"] for c in cells)
    lo, hi = (next(c for c in cells if c["rate"] == rate and c["overlap_min"] == o) for o in (o_lo, o_hi))
    return (hi["cpu_ms"] - lo["cpu_ms"]) / max(1, hi["records"] - lo["records"])


def extra_cpu_ms(narrow: dict, wide: dict, per_record: float) -> float:
    """One account's extra CPU: as measured when it needs more pages; with the same pages (a few more records,
    a difference below the noise) the extra records x the CPU per record."""
    if wide["calls"] > narrow["calls"]:
        return wide["cpu_ms"] - narrow["cpu_ms"]
    return (wide["records"] - narrow["records"]) * per_record


def signins_within(budget: float, overlap: timedelta, latency: float) -> float:
    """The most IAM-user sign-ins an hour whose paced lookups still fit in `budget` seconds (one root page)."""
    calls = math.floor((budget - latency) / PACE) + 1
    window = (INTERVAL + overlap).total_seconds() / 3600
    return (calls - 1) * PAGE_SIZE / window


def parse_mix(text: str) -> list[list[tuple[float, int]]]:
    return [
        [(float(rate), int(n)) for rate, n in (p.split(":") for p in mix.split(","))]
        for mix in text.split(";")
        if mix.strip()
    ]


def fleet(
    cells: list[dict], mixes: list[list[tuple[float, int]]], overlaps: list[timedelta], latency: float, concurrency: int
) -> list[dict]:
    per_record = record_cost(cells, overlaps)
    by = {(c["rate"], c["overlap_min"]): c for c in cells}
    narrow = min(overlaps).total_seconds() / 60
    out = []
    for mix in mixes:
        for overlap in overlaps:
            o = overlap.total_seconds() / 60
            missing = [rate for rate, _ in mix if (rate, o) not in by]
            if missing:
                raise SystemExit(f"--mix names rates not measured (--rates): {missing}")
            calls = sum(n * by[(rate, o)]["calls"] for rate, n in mix)
            records = sum(n * by[(rate, o)]["records"] for rate, n in mix)
            extra = sum(n * extra_cpu_ms(by[(rate, narrow)], by[(rate, o)], per_record) for rate, n in mix)
            t_min = calls * latency / concurrency
            chain = max(by[(rate, o)]["model_wall_s"] for rate, n in mix if n)
            out.append(
                {
                    "mix": ", ".join(f"{n:,} at {rate:,g}/h" for rate, n in mix),
                    "accounts": sum(n for _, n in mix),
                    "overlap_min": o,
                    "calls": calls,
                    "records": records,
                    "extra_cpu_s": extra / 1000,
                    "t_min_s": t_min,
                    "chain_s": chain,
                    "bound_s": t_min + chain,
                }
            )
    return out


# --------------------------------------------------------------------------- output


def md_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def render(args: argparse.Namespace, command: str, result: dict) -> str:
    cells, paced, late, fleet_rows = result["cells"], result["paced"], result["late"], result["fleet"]
    measured = {(r["rate"], r["overlap_min"]): r for r in paced["rows"]}
    per_record = result["record_cost_ms"]
    rows = []
    for c in cells:
        p = measured.get((c["rate"], c["overlap_min"]))
        rows.append(
            (
                f"{c['rate']:,g}",
                f"{c['overlap_min']:g} min",
                f"{c['window_min']:g} min",
                f"{c['signins']:,}",
                f"{c['calls']:,}",
                f"{c['records']:,}",
                str(c["findings"]),
                f"{c['cpu_ms']:.1f} ({min(c['cpu_ms_runs']):.1f}-{max(c['cpu_ms_runs']):.1f})",
                f"{p['wall_s']:.1f}" if p else "",
                f"{c['model_wall_s']:.1f}",
                f"{c['aws_pace_wall_s']:.1f}",
            )
        )
    by = {(c["rate"], c["overlap_min"]): c for c in cells}
    o_lo, o_hi = (o.total_seconds() / 60 for o in (min(result["overlaps"]), max(result["overlaps"])))
    extra = []
    for rate in sorted({c["rate"] for c in cells}):
        lo, hi = by[(rate, o_lo)], by[(rate, o_hi)]
        extra.append(
            (
                f"{rate:,g}",
                f"+{hi['calls'] - lo['calls']:,}",
                f"+{hi['records'] - lo['records']:,}",
                f"{hi['cpu_ms'] - lo['cpu_ms']:+.1f}",
                f"+{hi['model_wall_s'] - lo['model_wall_s']:.1f}",
            )
        )
    late_rows = []
    for minutes in late["late"]:
        cells_late = []
        for o in (f"{x.total_seconds() / 60:g}" for x in result["overlaps"]):
            after = late["found"][o][f"{minutes:g}"]
            cells_late.append("missed" if after is None else f"found ({after:.1f} min after it became visible)")
        late_rows.append((f"{minutes:g} min", *cells_late))
    fleet_table = [
        (
            r["mix"],
            f"{r['overlap_min']:g} min",
            f"{r['calls']:,}",
            f"{r['records']:,}",
            f"{r['extra_cpu_s']:+.1f}",
            f"{r['t_min_s']:.0f}",
            f"{r['chain_s']:.0f}",
            f"{r['bound_s']:.0f}",
            "yes" if r["bound_s"] <= SWEEP_BUDGET else "NO",
        )
        for r in fleet_rows
    ]
    import botocore  # noqa: PLC0415

    return "\n".join(
        [
            f"Machine: {len(os.sched_getaffinity(0))} CPU(s) (nproc), {cpu_model()}; Python {platform.python_version()}, "
            f"botocore {botocore.__version__}; load average {result['load_start']} at the start, {result['load_end']} at "
            f"the end (a shared machine). Date: {result['date']}.",
            "",
            f"Command: `{command}` ({result['seconds']:.0f} s)",
            "",
            f"What one steady sweep reads for one account in us-east-1: the window is [now - {INTERVAL.seconds // 60} min "
            f"- overlap, now] (`Monitor._start`: cursor - `OVERLAP`, {OVERLAP.total_seconds() / 60:g} min, against 20 "
            f"min, issue 12's former overlap, which bench/org_sweep.py's steady phase still uses). Each sweep is "
            f"`Sweeper.sweep` with that window against the AWS stand-in (pages of "
            f"{PAGE_SIZE}): the `Username=root` and `EventName=ConsoleLogin` lookups, the records unwrapped and "
            f"checked. Each account holds IAM-user console sign-ins at the rate shown, evenly over the last "
            f"{args.hours:g} h, and 3 root events (root sign-ins 3 and 41 min ago, a root API call 12 min ago). "
            f"sign-ins = IAM-user sign-ins in the window; LookupEvents = the calls the stand-in received (both "
            f"lookups); records = records read and parsed (root sign-ins come in both lookups); findings = root "
            f"findings. CPU = rootcheck's user+system ms for the sweep (getrusage; the stand-in is another process; "
            f"median of {args.repeat}, alternating the overlaps; one account alone, so it includes the sweep's "
            f"fixed cost). Wall: rootcheck "
            f"sends an account's LookupEvents {PACE:g} s apart per Region, both us-east-1 lookups sharing that pace, so "
            f"a sweep of the account takes (calls - 1) x {PACE:g} s + latency (model, latency {args.latency:g} s); "
            f"*paced* is that measured, all rows up to {args.paced_max:,g}/h in one sweep, against a stand-in "
            f"allowing 2 LookupEvents/s per account and Region with {args.latency:g} s latency "
            f"({paced['throttled']} throttled, at most {paced['max_rate']} LookupEvents in one second for one "
            f"account); *at 2/s* is the model at AWS's own limit, which rootcheck leaves half of to other tools.",
            "",
            md_table(
                (
                    "IAM-user sign-ins/h",
                    "overlap",
                    "window",
                    "sign-ins",
                    "LookupEvents",
                    "records",
                    "findings",
                    "CPU ms (min-max)",
                    "paced wall s",
                    f"model wall s ({PACE:g} s)",
                    "at 2/s s",
                ),
                rows,
            ),
            "",
            f"What {o_hi:g} min costs over {o_lo:g} min, per account and steady sweep:",
            "",
            md_table(("IAM-user sign-ins/h", "LookupEvents", "records", "CPU ms", "wall s"), extra),
            "",
            f"CPU per record re-read, its share of a page's call included: {1000 * per_record:.0f} µs (the "
            f"{max(c['rate'] for c in cells):,g}/h account's extra CPU over its extra records); for the other rates "
            f"it predicts "
            + ", ".join(
                f"{(by[(r, o_hi)]['records'] - by[(r, o_lo)]['records']) * per_record:+.1f} ms at {r:,g}/h"
                for r in sorted({c["rate"] for c in cells})[:-1]
            )
            + ".",
            "",
            f"At the pace of {PACE:g} s, one account's us-east-1 lookups fit in the {SWEEP_BUDGET:.0f} s interval up to "
            + ", ".join(
                f"{signins_within(SWEEP_BUDGET, o, args.latency):,.0f} IAM-user sign-ins/h with "
                f"{o.total_seconds() / 60:g} min"
                for o in result["overlaps"]
            )
            + " (at AWS's 2/s limit, twice as many).",
            "",
            f"**Late events**, through the same code path: {late['sweeps']} simulated sweeps {INTERVAL.seconds // 60} min "
            f"apart, each over [cursor - overlap, sweep time], the cursor moving to each sweep's end; root sign-ins "
            f"are added to the stand-in only once they have become visible, the given minutes after their eventTime.",
            "",
            md_table(
                ("visible after", *(f"overlap {x.total_seconds() / 60:g} min" for x in result["overlaps"])), late_rows
            ),
            "",
            f"**10,000 accounts**, one steady sweep (us-east-1 only; an assumed mix of sign-in rates, each account "
            f"as measured above). T_min = calls x {args.fleet_latency:g} s / {result['concurrency']} workers "
            f"(bench/org_sweep.py's stand-in latency; its steady sweep of 10,000 accounts took 1.05 x T_min); chain = "
            f"the busiest account's paced lookups (model); bound = T_min + chain, the wall if that account is the "
            f"last one started; extra CPU = the measured difference of accounts that need more pages, extra records x "
            f"the CPU per record for the others.",
            "",
            md_table(
                (
                    "accounts",
                    "overlap",
                    "LookupEvents",
                    "records",
                    f"extra CPU s (vs {o_lo:g} min)",
                    "T_min s",
                    "chain s",
                    "bound s",
                    f"within {SWEEP_BUDGET:.0f} s",
                ),
                fleet_table,
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="0,6,60,600,6000", help="IAM-user sign-ins per hour, one account each")
    ap.add_argument(
        "--overlaps", default=f"20,{OVERLAP.total_seconds() / 60:g}", help="minutes (default 20 and OVERLAP)"
    )
    ap.add_argument("--hours", type=float, default=2.0, help="hours of sign-ins before now (default 2)")
    ap.add_argument("--repeat", type=int, default=5, help="sweeps per rate and overlap for the CPU median (default 5)")
    ap.add_argument("--latency", type=float, default=0.1, help="seconds per call in the paced phase (default 0.1)")
    ap.add_argument("--paced-max", type=float, default=600, help="highest rate measured paced (default 600)")
    ap.add_argument("--late", default="2,15,45", help="minutes late the root sign-ins become visible")
    ap.add_argument(
        "--mix",
        default="0:9000,6:900,60:90,600:9,6000:1;60:10000",
        help="rate:accounts,...; several mixes separated by ';'",
    )
    ap.add_argument("--fleet-latency", type=float, default=0.1, help="seconds per call for T_min (default 0.1)")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args(argv)
    rates = sorted(float(x) for x in args.rates.split(","))
    overlaps = sorted(timedelta(minutes=float(x)) for x in args.overlaps.split(","))
    args.late = [float(x) for x in args.late.split(",")]
    mixes = parse_mix(args.mix)

    load_start, began = " ".join(f"{x:.2f}" for x in os.getloadavg()), time.perf_counter()
    print("1. counts and CPU ...", file=sys.stderr, flush=True)
    cells = counts_and_cpu(args, rates, overlaps)
    print("2. paced wall ...", file=sys.stderr, flush=True)
    paced = paced_wall(args, rates, overlaps)
    print("3. late events ...", file=sys.stderr, flush=True)
    late = late_events(args, overlaps)
    concurrency = load_settings().concurrency
    result = {
        "cells": cells,
        "paced": paced,
        "late": late,
        "overlaps": overlaps,
        "record_cost_ms": record_cost(cells, overlaps),
        "fleet": fleet(cells, mixes, overlaps, args.fleet_latency, concurrency),
        "concurrency": concurrency,
        "load_start": load_start,
        "load_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.perf_counter() - began,
    }
    command = shlex.join([".venv/bin/python", "bench/overlap.py", *(argv if argv is not None else sys.argv[1:])])
    body = render(args, command, result)
    print(body)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=lambda o: o.total_seconds() / 60))
    if not args.no_docs:
        write_section_keeping_notes(SECTION, body)
        print(f"wrote the section '{SECTION}' of docs/benchmarks.md", file=sys.stderr)
    hi, lo = (f"{o.total_seconds() / 60:g}" for o in (max(overlaps), min(overlaps)))
    probe = f"{max(args.late):g}"
    ok = late["found"][hi][probe] is not None and late["found"][lo][probe] is None and paced["throttled"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
