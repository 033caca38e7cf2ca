"""Benchmark (issue 3): sweep a whole AWS Organization, fast and within AWS's limits.

Runs the installed `rootcheck scan --format json` as a user would, as a subprocess, against the
loopback AWS stand-in (`python -m tests.fakes.aws_standin`, one fresh process per run so every run
starts from the same state: no credential report yet, zeroed counters) with a fixed latency per call
and the stand-in's LookupEvents limit of 2 requests/s per account and Region.

For each run it reports the wall time of the rootcheck process; T_min = calls x latency / concurrency,
where calls are all the AWS calls the sweep made as counted by the stand-in (AssumeRole and
GetCallerIdentity included); wall / T_min; AssumeRole and LookupEvents calls per account; throttled
calls; the peak RSS of the rootcheck process (os.wait4 rusage of the child: resource accounting, not
sampling); the CPU seconds of rootcheck and of the stand-in; and whether the seeded root logins were
all found (exit status 1 and exactly one root_console_login finding per seeded account).

    .venv/bin/python bench/org_sweep.py                 # the full benchmark, writes docs/benchmarks.md
    .venv/bin/python bench/org_sweep.py --accounts 100 --concurrency 64 --scaling '' --no-docs

Every run is bounded by --run-timeout (default: derived from the expected T_min) and the whole
benchmark by --budget; the stand-in is always stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import cpu_model, write_section  # noqa: E402

BIN = Path(sys.executable).parent
ROOTCHECK = BIN / "rootcheck"
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Organization sweep (issue 3)"
CALLS_PER_ACCOUNT_GUESS = 7  # AssumeRole, 2 LookupEvents, alias, report Get/Generate/Get: for time bounds only

# targets of the issue
RATIO_TARGET = 1.2
ASSUME_TARGET = 1.1
THROTTLE_TARGET = 2.0  # percent, strictly below
RSS_BASE_MIB, RSS_PER_ACCOUNT_MIB = 300.0, 0.7


def default_concurrency() -> int:
    from bot.config import DEFAULT_CONCURRENCY  # noqa: PLC0415

    return DEFAULT_CONCURRENCY


@dataclass
class Run:
    accounts: int
    concurrency: int
    explicit: bool  # False: ROOTCHECK_CONCURRENCY unset (the default)
    latency: float
    wall: float = 0.0
    exit_status: int | None = None
    timed_out: bool = False
    calls: int = 0
    by_action: dict = field(default_factory=dict)
    throttled: int = 0
    max_rate: int = 0
    errors: dict = field(default_factory=dict)
    rss_kib: int = 0
    cpu_user: float = 0.0
    cpu_sys: float = 0.0
    standin_cpu: float = 0.0
    other_cpu: float = 0.0  # CPU seconds of every other process on the machine during the run
    seeded: int = 0
    login_findings: int = 0
    findings: int = 0
    found_accounts_ok: bool = False
    stderr_tail: str = ""

    @property
    def label(self) -> str:
        return f"{self.concurrency}" if self.explicit else f"default ({self.concurrency})"

    @property
    def t_min(self) -> float:
        return self.calls * self.latency / self.concurrency

    @property
    def ratio(self) -> float:
        return self.wall / self.t_min if self.t_min else float("inf")

    def per_account(self, action: str) -> float:
        return self.by_action.get(action, 0) / self.accounts

    @property
    def throttled_pct(self) -> float:
        return 100.0 * self.throttled / self.calls if self.calls else 0.0

    @property
    def rss_mib(self) -> float:
        return self.rss_kib / 1024

    @property
    def rss_target(self) -> float:
        return RSS_BASE_MIB + RSS_PER_ACCOUNT_MIB * self.accounts

    @property
    def correct(self) -> bool:
        return (self.exit_status == 1 and not self.timed_out and self.login_findings == self.seeded
                and self.found_accounts_ok)

    def verdicts(self) -> dict[str, bool]:
        return {"wall <= 1.2 T_min": self.ratio <= RATIO_TARGET,
                "AssumeRole <= 1.1/account": self.per_account("AssumeRole") <= ASSUME_TARGET,
                "throttled < 2%": self.throttled_pct < THROTTLE_TARGET,
                "RSS <= 300 MiB + 0.7 MiB/account": self.rss_mib <= self.rss_target,
                "seeded logins found": self.correct}


# --------------------------------------------------------------------------- the stand-in

#: --standin-nodelay (a diagnostic, never the benchmark's figures): the same stand-in with TCP_NODELAY
#: on its accepted sockets. It writes a response's headers and body in two send() calls; without
#: TCP_NODELAY, Nagle holds the body until the client ACKs the headers, and the client's delayed ACK
#: adds ~40 ms to a call on a busy keep-alive connection.
NODELAY_SHIM = """
import socket, sys
from tests.fakes import aws_standin
_setup = aws_standin._Handler.setup
def setup(self):
    _setup(self)
    self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
aws_standin._Handler.setup = setup
sys.exit(aws_standin.main(sys.argv[1:]))
"""


class StandIn:
    """`python -m tests.fakes.aws_standin` as a child process; stop() always ends it."""

    def __init__(self, accounts: int, seeded: int, latency: float, workdir: Path, nodelay: bool = False):
        self.manifest_path = workdir / "manifest.json"
        self.log = open(workdir / "standin.stderr", "wb")  # noqa: SIM115
        args = ["--port", "0", "--accounts", str(accounts), "--seed-root-logins", str(seeded),
                "--latency", str(latency), "--manifest", str(self.manifest_path)]
        launch = [sys.executable, "-c", NODELAY_SHIM, *args] if nodelay else \
            [sys.executable, "-m", "tests.fakes.aws_standin", *args]
        self.proc = subprocess.Popen(launch, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, start_new_session=True)
        self.manifest: dict = {}

    def ready(self, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not line or not line[0].strip():
            raise RuntimeError(f"the stand-in did not start within {timeout:.0f}s (see {self.log.name})")
        while not self.manifest_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.manifest = json.loads(self.manifest_path.read_text())
        return self.manifest

    def stats(self) -> dict:
        with urllib.request.urlopen(self.manifest["url"] + "/_standin/stats", timeout=30) as answer:
            return json.loads(answer.read())

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.log.close()


# --------------------------------------------------------------------------- one run


def machine_busy() -> float:
    """CPU seconds all processors have been busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def rootcheck_env(manifest: dict, workdir: Path, accounts_file: Path, concurrency: int | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROOTCHECK_", "SLACK_"))}
    env.update(manifest["env"])
    env.update({"HOME": str(workdir), "NO_COLOR": "1", "ROOTCHECK_ACCOUNTS_FILE": str(accounts_file)})
    if concurrency is not None:
        env["ROOTCHECK_CONCURRENCY"] = str(concurrency)
    return env


def run_once(accounts: int, concurrency: int | None, latency: float, seeded: int, timeout: float,
             default: int, nodelay: bool = False) -> Run:
    run = Run(accounts, concurrency or default, concurrency is not None, latency)
    with tempfile.TemporaryDirectory(prefix="rootcheck-bench-") as tmp:
        workdir = Path(tmp)
        standin = StandIn(accounts, seeded, latency, workdir, nodelay)
        try:
            manifest = standin.ready()
            accounts_file = workdir / "accounts.yaml"
            accounts_file.write_text("".join(f"- '{a}'\n" for a in manifest["accounts"]))
            env = rootcheck_env(manifest, workdir, accounts_file, concurrency)
            cpu_before, machine_before = standin.cpu_seconds(), machine_busy()
            with open(workdir / "out.jsonl", "wb") as out, open(workdir / "err.txt", "wb") as err:
                started = time.perf_counter()
                proc = subprocess.Popen([str(ROOTCHECK), "scan", "--format", "json"], stdout=out, stderr=err,
                                        env=env, cwd=workdir)
                killer = threading.Timer(timeout, lambda: (setattr(run, "timed_out", True), proc.kill()))
                killer.start()
                try:
                    _, status, usage = os.wait4(proc.pid, 0)  # rusage of exactly this child
                except BaseException:  # interrupted: leave no rootcheck behind
                    proc.kill()
                    proc.wait()
                    raise
                finally:
                    killer.cancel()
                run.wall = time.perf_counter() - started
                proc.returncode = run.exit_status = os.waitstatus_to_exitcode(status)
            run.standin_cpu = standin.cpu_seconds() - cpu_before
            run.rss_kib, run.cpu_user, run.cpu_sys = usage.ru_maxrss, usage.ru_utime, usage.ru_stime
            run.other_cpu = max(0.0, machine_busy() - machine_before - run.cpu_user - run.cpu_sys - run.standin_cpu)
            stats = standin.stats()
        finally:
            standin.stop()
        run.calls = sum(stats["calls"].values())
        for key, n in stats["calls"].items():
            action = key.split(":")[1]
            run.by_action[action] = run.by_action.get(action, 0) + n
        run.throttled = stats["throttled_total"]
        run.max_rate = max(stats["max_rate"].values(), default=0)
        run.errors = stats["errors"]
        findings = [json.loads(line) for line in (workdir / "out.jsonl").read_text().splitlines() if line.strip()]
        logins = [f for f in findings if f["kind"] == "root_console_login"]
        run.findings, run.login_findings, run.seeded = len(findings), len(logins), len(manifest["root_login_accounts"])
        run.found_accounts_ok = sorted(f["account_id"] for f in logins) == sorted(manifest["root_login_accounts"])
        run.stderr_tail = "\n".join((workdir / "err.txt").read_text(errors="replace").splitlines()[-5:])
    return run


# --------------------------------------------------------------------------- output


HEADER = ("accounts", "concurrency", "wall s", "calls", "T_min s", "wall/T_min", "AssumeRole/acct",
          "LookupEvents/acct", "throttled", "peak RSS MiB (target)", "CPU s rootcheck / stand-in / other", "found")


def row(run: Run) -> tuple[str, ...]:
    return (f"{run.accounts:,}", run.label, f"{run.wall:.1f}" + (" (timeout)" if run.timed_out else ""),
            f"{run.calls:,}", f"{run.t_min:.1f}", f"{run.ratio:.2f}",
            f"{run.per_account('AssumeRole'):.2f}", f"{run.per_account('LookupEvents'):.2f}",
            f"{run.throttled} ({run.throttled_pct:.2f}%)", f"{run.rss_mib:.0f} ({run.rss_target:.0f})",
            f"{run.cpu_user + run.cpu_sys:.1f} / {run.standin_cpu:.1f} / {run.other_cpu:.1f}",
            f"{run.login_findings}/{run.seeded}, exit {run.exit_status}" + ("" if run.correct else " FAIL"))


def text_table(runs: list[Run]) -> str:
    rows = [HEADER, *map(row, runs)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows)


def md_table(runs: list[Run]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---:" for _ in HEADER) + "|"]
    lines += ["| " + " | ".join(row(r)) + " |" for r in runs]
    return "\n".join(lines)


def import_time() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import bot.cli, bot.scan.command, bot.sweeper, bot.aws.collect"],
                   cwd=ROOT, check=True, timeout=60)
    return time.perf_counter() - started


def machine() -> dict:
    cpu = cpu_model()
    import botocore  # noqa: PLC0415

    return {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu, "python": platform.python_version(),
            "botocore": botocore.__version__, "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "date": subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip()}


def verdict_lines(runs: list[Run]) -> list[str]:
    lines = []
    for run in runs:
        missed = [name for name, ok in run.verdicts().items() if not ok]
        lines.append(f"- {run.accounts:,} accounts at {run.label}: "
                     + ("all targets met" if not missed else "missed: " + ", ".join(missed)))
    return lines


def analysis_lines(runs: list[Run], diagnostics: list[Run], startup: float) -> list[str]:
    """Where the time went, from the run's own figures."""
    lines = []
    for run in runs:
        cpu = run.cpu_user + run.cpu_sys
        per_call_worker = run.wall * run.concurrency / run.calls * 1000 if run.calls else 0
        line = (f"- {run.accounts:,} accounts at {run.label}: wall/T_min {run.ratio:.2f}. rootcheck used {cpu:.1f} s "
                f"of CPU in {run.wall:.1f} s ({100 * cpu / run.wall:.0f}% of one core; its threads run Python one at a "
                f"time, under the GIL), {1000 * cpu / run.calls:.1f} ms per AWS call all included; the stand-in used "
                f"{run.standin_cpu:.1f} s and other processes on this {len(os.sched_getaffinity(0))}-CPU machine "
                f"{run.other_cpu:.1f} s. ")
        if cpu >= RATIO_TARGET * run.t_min:
            line += (f"CPU-bound: rootcheck's CPU alone ({cpu:.1f} s) exceeds 1.2 x T_min "
                     f"({RATIO_TARGET * run.t_min:.1f} s), "
                     "so no scheduling can meet the target at this concurrency on this machine.")
        else:
            line += (f"Not CPU-bound: each worker spent {per_call_worker:.0f} ms per call (wall x concurrency / calls) "
                     f"against the stand-in's {1000 * run.latency:.0f} ms latency. Fixed costs inside the wall: "
                     f"{startup:.1f} s of start-up, and the chain of the last accounts admitted (AssumeRole, "
                     "credential report Get and Generate, a 2 s wait before polling it, Get; ~2.5 s) during which "
                     "fewer calls are left than workers.")
        for diag in diagnostics:
            if (diag.accounts, diag.concurrency) == (run.accounts, run.concurrency):
                line += (f" The same sweep against the stand-in with TCP_NODELAY on its sockets (a diagnostic run, not "
                         f"a benchmark figure): {diag.wall:.1f} s, wall/T_min {diag.ratio:.2f}.")
        lines.append(line)
    return lines


def scaling_lines(runs: list[Run]) -> list[str]:
    lines = []
    by_conc: dict[int, list[Run]] = {}
    for run in runs:
        by_conc.setdefault(run.concurrency, []).append(run)
    for conc, group in sorted(by_conc.items()):
        group = sorted({r.accounts: r for r in group}.values(), key=lambda r: r.accounts)
        if len(group) < 2:
            continue
        first, last = group[0], group[-1]
        k = last.accounts / first.accounts
        slope_wall = (last.wall - first.wall) / (last.accounts - first.accounts) * 1000
        slope_rss = (last.rss_mib - first.rss_mib) / (last.accounts - first.accounts)
        lines.append(f"- concurrency {conc}: " + ", ".join(
            f"{r.accounts:,} accounts {r.wall:.1f} s / {r.rss_mib:.0f} MiB" for r in group)
            + f". From {first.accounts:,} to {last.accounts:,} accounts (x{k:.0f}): wall x{last.wall / first.wall:.1f} "
            f"({slope_wall:.1f} ms per extra account), peak RSS x{last.rss_mib / first.rss_mib:.2f} "
            f"({slope_rss * 1024:.0f} KiB per extra account).")
    return lines




# --------------------------------------------------------------------------- main


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, default=1000, help="accounts of the main runs (default 1000)")
    ap.add_argument("--concurrency", default="default,64",
                    help="comma list of ROOTCHECK_CONCURRENCY values for the main runs; 'default' leaves it "
                         "unset (bot/config.py's DEFAULT_CONCURRENCY). Default: default,64")
    ap.add_argument("--scaling", default="100,300",
                    help="extra account counts for the growth runs (comma list; '' for none). Default: 100,300")
    ap.add_argument("--scaling-concurrency", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.1, help="seconds per call at the stand-in (default 0.1)")
    ap.add_argument("--seed-root-logins", type=int, default=10, help="accounts with one root ConsoleLogin")
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration (the table shows each)")
    ap.add_argument("--run-timeout", type=float, default=None,
                    help="seconds per rootcheck run (default: 60 + 10 x the expected T_min)")
    ap.add_argument("--budget", type=float, default=1800, help="seconds for the whole benchmark (default 1800)")
    ap.add_argument("--standin-nodelay", action="store_true",
                    help="diagnostic: TCP_NODELAY on the stand-in's sockets (implies --no-docs)")
    ap.add_argument("--no-nodelay-check", dest="nodelay_check", action="store_false",
                    help="skip the diagnostic re-run of the first configuration against a TCP_NODELAY stand-in")
    ap.add_argument("--no-docs", action="store_true", help=f"do not write {DOCS.relative_to(ROOT)}")
    ap.add_argument("--docs", type=Path, default=DOCS, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args(argv)

    default = default_concurrency()
    plan: list[tuple[int, int | None, bool]] = []
    for item in args.concurrency.split(","):
        item = item.strip()
        if item:
            plan.append((args.accounts, None if item == "default" else int(item), args.standin_nodelay))
    for n in parse_ints(args.scaling):
        plan.append((n, args.scaling_concurrency, args.standin_nodelay))
    plan = [p for p in plan for _ in range(args.repeat)]
    if args.nodelay_check and not args.standin_nodelay and plan:
        plan.append((plan[0][0], plan[0][1], True))

    signal.signal(signal.SIGTERM, _interrupt)  # unwind like Ctrl-C: every child started here is stopped
    deadline = time.monotonic() + args.budget
    load_at_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    startup = min(import_time() for _ in range(3))
    runs: list[Run] = []
    diagnostics: list[Run] = []
    for accounts, conc, nodelay in plan:
        expected = CALLS_PER_ACCOUNT_GUESS * accounts * args.latency / (conc or default)
        timeout = args.run_timeout or 60 + 10 * expected
        left = deadline - time.monotonic()
        what = f"{accounts:,} accounts at concurrency {conc or f'default ({default})'}" + \
            (" against a TCP_NODELAY stand-in (diagnostic)" if nodelay else "")
        if left < min(timeout, 30):
            print(f"budget spent: skipping {what}", file=sys.stderr)
            continue
        print(f"running {what} (timeout {min(timeout, left):.0f}s) ...", file=sys.stderr, flush=True)
        run = run_once(accounts, conc, args.latency, min(args.seed_root_logins, accounts), min(timeout, left), default,
                       nodelay)
        (diagnostics if nodelay and not args.standin_nodelay else runs).append(run)
        print("  " + text_table([run]).splitlines()[1], file=sys.stderr, flush=True)
        if not run.correct:
            print("  rootcheck stderr (last lines):\n    " + run.stderr_tail.replace("\n", "\n    "), file=sys.stderr)

    print(text_table(runs))
    if diagnostics:
        print("diagnostic, stand-in with TCP_NODELAY:\n" + text_table(diagnostics))
    info = machine()
    command = shlex.join([".venv/bin/python", "bench/org_sweep.py", *(argv if argv is not None else sys.argv[1:])])
    main_runs = [r for r in runs if r.accounts == args.accounts]
    growth = [r for r in runs if r.concurrency == args.scaling_concurrency]
    body = "\n".join([
        f"Machine: {info['nproc']} CPU(s) (nproc), {info['cpu']}; Python {info['python']}, botocore "
        f"{info['botocore']}; load average {load_at_start} when the benchmark started, {info['load']} at its end "
        f"(the machine is shared: see the *other* CPU column). Date: {info['date']}.",
        "",
        f"Start-up: importing rootcheck's sweep code (boto3 and botocore included) takes {startup:.2f} s of the wall "
        "time of every run (best of 3).",
        "",
        f"Command: `{command}`",
        "",
        f"Each run: a fresh stand-in (`python -m tests.fakes.aws_standin --accounts N --seed-root-logins "
        f"{args.seed_root_logins} --latency {args.latency}`, LookupEvents limited to 2 requests/s per account "
        "and Region), then `rootcheck scan --format json` as a subprocess with `ROOTCHECK_ACCOUNTS_FILE` listing "
        "its accounts, the stand-in's `env`, and `ROOTCHECK_CONCURRENCY` (unset for *default*). "
        "Wall = the rootcheck process from spawn to exit (Python start-up included). "
        "calls = every request the stand-in received during the sweep (AssumeRole and GetCallerIdentity "
        "included); T_min = calls x latency / concurrency. Peak RSS = `ru_maxrss` from `os.wait4` on the "
        "rootcheck child. CPU = user+system seconds of rootcheck (rusage), of the stand-in (/proc/PID/stat) and "
        "of everything else on the machine (/proc/stat, the rest) during the run. found = root_console_login "
        "findings / seeded root logins (must be equal, exit status 1).",
        "",
        md_table(runs),
        "",
        "Calls by action: " + "; ".join(
            f"{r.accounts:,}@{r.label}: " + ", ".join(f"{a} {n:,}" for a, n in sorted(r.by_action.items()))
            for r in runs) + ".",
        "",
        "Targets (wall <= 1.2 x T_min, <= 1.1 AssumeRole per account, < 2% throttled, "
        "peak RSS <= 300 MiB + 0.7 MiB per account, all seeded logins found):",
        "",
        *verdict_lines(main_runs or runs),
        "",
        "Growth (concurrency {}):".format(args.scaling_concurrency),
        "",
        *(scaling_lines(growth) or ["- (not measured in this invocation)"]),
        "",
        "Where the time goes (from each run's figures):",
        "",
        *(analysis_lines([r for r in main_runs if r.ratio > RATIO_TARGET], diagnostics, startup)
          or ["- every run met wall <= 1.2 x T_min"]),
    ])
    if args.json:
        rows = [r.__dict__ | {"t_min": r.t_min, "ratio": r.ratio, "diagnostic": r in diagnostics}
                for r in runs + diagnostics]
        args.json.write_text(json.dumps(rows, indent=1))
    if not (args.no_docs or args.standin_nodelay):
        notes = ""
        if args.docs.exists():  # a hand-written analysis under the generated figures survives a re-run
            match = re.search(rf"^{re.escape(SECTION)}\n.*?^(### .*?)(?=^## |\Z)", args.docs.read_text(), re.M | re.S)
            notes = match.group(1) if match else ""
        write_section(SECTION.removeprefix('## '), path=args.docs, body=body + ("\n\n" + notes.strip() if notes else ""))
        print(f"wrote the section '{SECTION}' of {args.docs}", file=sys.stderr)
    return 0 if runs and all(r.correct for r in runs) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("org_sweep: interrupted; the stand-in and rootcheck were stopped", file=sys.stderr)
        sys.exit(130)
