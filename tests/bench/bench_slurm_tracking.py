"""Benchmark: what following 1,000 Slurm jobs costs the server (docs/performance.md).

Not a test: named bench_*, so only scripts/bench.sh collects it. It starts an hpcwaas server
(debug log, the default 5 s poll interval) whose ``cluster`` environment is the loopback
cluster of tests/cluster_support.py, triggers 1,000 executions of a ``sleep 600`` Slurm step,
750 as hpcuser1 and 250 as hpcuser2, waits until every step has a job ID (16 jobs run, the
rest pend), then watches the server for the tracker's poll cycles:

* the ``squeue for LOGIN@HOST:PORT: N jobs`` debug lines of hpcwaas.engine.jobs, one per
  squeue, counted per poll cycle: there must be one per (environment, login) pair each
  cycle, however many jobs those accounts have;
* the server's CPU time (utime + stime of /proc/PID/stat) and RSS (VmRSS of
  /proc/PID/status) at the start and the end of the window.

Then it scancels every job as root, times until the tracker has ended every execution,
prints a table, records the row of the suite's table (tests/bench/support.py) and stops the
server. The server
log is copied to test-artifacts/ (pytest keeps only its last few temp dirs).
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from rich import box
from rich.console import Console
from rich.table import Table
from tests.bench.support import cluster_server, record
from tests.cluster_support import Cluster
from tests.conftest import LiveServer

from hpcwaas.settings import SlurmEnvironment

EXECUTIONS = 1000
LOGINS = ("hpcuser1", "hpcuser2")  # one hpcwaas user and one key each
ENVIRONMENTS = 1  # the `cluster` environment
SLEEP_SECONDS = 600
OBSERVED_CYCLES = 6
TRIGGER_THREADS = 16  # concurrent POSTs while triggering
SUBMIT_TIMEOUT = 420.0  # for all 1,000 steps to get a job ID
RSS_LIMIT_MB = 300.0
CPU_LIMIT_PERCENT = 10.0
POLL_INTERVAL = SlurmEnvironment.model_fields["poll_interval"].default  # the default: 5 s
TICKS = os.sysconf("SC_CLK_TCK")

CATALOG = f"""
application: bench
environments: [cluster]
expose: [long]
workflows:
  long:
    inputs:
      seconds: {{type: integer, default: {SLEEP_SECONDS}}}
    steps:
      wait:
        kind: slurm
        script: |
          sleep {{{{ inputs.seconds }}}}
        options: {{ntasks: 1}}
"""

SQUEUE_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) DEBUG hpcwaas\.engine\.jobs: "
    r"squeue for (\S+)@(\S+):(\d+): (\d+) jobs$"
)
POLL_FAILED = "polling jobs of"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LOG_COPY = "bench-slurm-tracking-server.log"
WINDOW_LIMIT = (OBSERVED_CYCLES + 3) * POLL_INTERVAL  # seconds, should the cycles not fit
END_TIMEOUT = 240.0  # for the executions to end after their jobs are scancelled
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


@dataclass
class Sample:
    """The server process's CPU seconds (user + system) and resident memory at one moment."""

    at: float
    cpu_seconds: float
    rss_mb: float


def sample(pid: int) -> Sample:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]
    return Sample(time.time(), (utime + stime) / TICKS, rss_kb / 1024)


def squeue_calls(log_path: Path) -> list[tuple[float, str]]:
    """(epoch time, login@host:port) of every squeue the server logged."""
    calls = []
    for line in log_path.read_text(errors="replace").splitlines():
        match = SQUEUE_LINE.match(line)
        if match:
            at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            calls.append((at, f"{match.group(2)}@{match.group(3)}:{match.group(4)}"))
    return calls


def slurm_states() -> Counter[str]:
    """The test accounts' jobs by state, from squeue as root."""
    listed = subprocess.run(
        ["squeue", "-h", "-u", ",".join(LOGINS), "-o", "%T"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return Counter(listed.split())


def per_cycle(calls: list[tuple[float, str]], start: float, end: float) -> tuple[list[int], float]:
    """Squeue calls in each whole poll cycle within [start, end] (OBSERVED_CYCLES at most).

    The tracker sleeps the poll interval after each poll ends, so its cycle is the interval
    plus the poll's duration: a grid of fixed 5 s windows drifts across its calls and would
    count 0 or 2 of one pair now and then. The cycles are cut on the measured cycle instead,
    their boundaries in the middle of the widest gap between the pairs' calls. Returns the
    counts and the cycle in seconds; no count when no pair polled twice.
    """
    window = [(at, pair) for at, pair in calls if start <= at <= end]
    by_pair: dict[str, list[float]] = defaultdict(list)
    for at, pair in window:
        by_pair[pair].append(at)
    gaps = [b - a for times in by_pair.values() for a, b in pairwise(times)]
    if not gaps:
        return [], 0.0
    cycle = statistics.median(gaps)
    first = sorted(times[0] for times in by_pair.values())
    # The pairs' phases on a circle of one cycle; cut in the middle of the widest gap.
    phases = sorted((at - first[0]) % cycle for at in first)
    arcs = [(b - a, a) for a, b in zip(phases, [*phases[1:], phases[0] + cycle], strict=True)]
    widest, after = max(arcs)
    origin = first[0] + after + widest / 2
    if origin - cycle >= start:
        origin -= cycle
    counts: list[int] = []
    while len(counts) < OBSERVED_CYCLES and origin + (len(counts) + 1) * cycle <= end:
        low = origin + len(counts) * cycle
        counts.append(sum(1 for at, _ in window if low <= at < low + cycle))
    return counts, cycle


def new_key(client: httpx.Client, cluster: Cluster, login: str) -> str:
    made = client.post("/ssh_keys")
    assert made.status_code == 201, made.text
    key = made.json()
    cluster.clear_authorized(login)
    cluster.authorize(login, key["public_key"])
    return str(key["id"])


@pytest.fixture
def bench_server(tmp_path: Path, cluster: Cluster) -> Iterator[LiveServer]:
    # Limits raised for the run: one user triggers 750 executions in a burst and keeps them
    # running.
    raised = {
        "HPCWAAS_LIMITS__MAX_TRIGGERS_PER_MINUTE": "1000000",
        "HPCWAAS_LIMITS__MAX_RUNNING_EXECUTIONS_PER_USER": "1000000",
    }
    with cluster_server(
        tmp_path, cluster, CATALOG, extra_args=["--log_level", "debug"], env=raised
    ) as server:
        log_path = server.log_path
        yield server
    # pytest keeps only its last few temp dirs: keep the log where it can be read.
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(log_path, ARTIFACTS / LOG_COPY)


def test_tracking_1000_slurm_jobs_costs_one_squeue_per_account_per_interval(
    bench_server: LiveServer, cluster: Cluster
) -> None:
    server = bench_server
    assert server.process is not None
    pid = server.process.pid
    idle = sample(pid)

    # One hpcwaas user per cluster account, each with a key of its own.
    clients = {login: server.client(server.token(f"bench-{login}")) for login in LOGINS}
    keys = {login: new_key(client, cluster, login) for login, client in clients.items()}

    def trigger(n: int) -> tuple[str, str]:
        # 750 jobs for one account, 250 for the other: more than one command line's worth
        # of output files for the first (the tracker sends such scripts through stdin)
        login = LOGINS[0] if n % 4 else LOGINS[1]
        response = clients[login].post(
            "/workflows/bench@cluster@long",
            json={"inputs": {"user_id": login, "vault_id": keys[login]}},
        )
        assert response.status_code == 201, response.text
        return login, response.headers["location"].rsplit("/", 1)[1]

    try:
        started = time.time()
        with ThreadPoolExecutor(TRIGGER_THREADS) as pool:
            executions = list(pool.map(trigger, range(EXECUTIONS)))
        triggered = time.time()

        # Every step submitted: first seen in Slurm (cheap), then each job ID in the API.
        while sum(slurm_states().values()) < EXECUTIONS:
            assert time.time() - started < SUBMIT_TIMEOUT, (
                f"only {sum(slurm_states().values())} of {EXECUTIONS} jobs in Slurm "
                f"after {SUBMIT_TIMEOUT:.0f} s"
            )
            time.sleep(0.25)
        in_slurm = time.time()
        waiting = {execution_id for _, execution_id in executions}
        job_ids: dict[str, str] = {}
        while waiting:
            for login, execution_id in executions:
                if execution_id not in waiting:
                    continue
                body = clients[login].get(f"/executions/{execution_id}").json()
                assert body["status"] == "RUNNING", body
                if body["steps"][0].get("job_id"):
                    job_ids[execution_id] = str(body["steps"][0]["job_id"])
                    waiting.discard(execution_id)
            assert time.time() - started < SUBMIT_TIMEOUT, f"{len(waiting)} without a job ID"
            if waiting:
                time.sleep(0.25)
        all_ids = time.time()
        assert len(set(job_ids.values())) == EXECUTIONS

        # The window: until OBSERVED_CYCLES whole poll cycles are in the log (or past due).
        states = slurm_states()
        first = sample(pid)
        time.sleep((OBSERVED_CYCLES + 1) * POLL_INTERVAL)
        while True:
            last = sample(pid)
            calls = squeue_calls(server.log_path)
            counts, cycle = per_cycle(calls, first.at, last.at)
            if len(counts) == OBSERVED_CYCLES or last.at - first.at > WINDOW_LIMIT:
                break
            time.sleep(0.5)
        end_states = slurm_states()
        log_text = server.log_path.read_text(errors="replace")
        failed_polls = [line for line in log_text.splitlines() if POLL_FAILED in line]
        pairs = {pair for at, pair in calls if first.at <= at <= last.at}
        while_submitting = sum(1 for at, _ in calls if started <= at <= all_ids)

        # scancel every job as root: how long until the tracker has ended every execution?
        cancelled = time.time()
        cluster.cancel_jobs()
        ended = time.time()
        ends: Counter[str] = Counter()
        while time.time() - cancelled < END_TIMEOUT:
            ends = Counter()
            for client in clients.values():
                listed = client.get("/executions", params={"limit": EXECUTIONS}).json()
                ends.update(e["status"] for e in listed["executions"])
            ended = time.time()
            if sum(ends[status] for status in TERMINAL) == EXECUTIONS:
                break
            time.sleep(0.5)
        all_ended = sum(ends[status] for status in TERMINAL) == EXECUTIONS

        cpu_seconds = last.cpu_seconds - first.cpu_seconds
        rows = [
            ("executions tracked", f"{len(job_ids)}"),
            (
                "Slurm jobs running / pending",
                f"{states['RUNNING']} / {states['PENDING']}"
                f" (end of window: {end_states['RUNNING']} / {end_states['PENDING']})",
            ),
            ("(environment, login) pairs", f"{len(pairs)}"),
            (
                f"squeue calls per poll cycle (min / max over {len(counts)} cycles)",
                f"{min(counts, default=0)} / {max(counts, default=0)}",
            ),
            ("poll cycle (interval + poll time)", f"{cycle:.2f} s (interval {POLL_INTERVAL:g} s)"),
            (
                "server CPU while tracking (% of one core)",
                f"{100 * cpu_seconds / (last.at - first.at):.1f} %"
                f" ({cpu_seconds:.2f} s CPU in {last.at - first.at:.1f} s)",
            ),
            (
                "server RSS MB: idle / window start / window end",
                f"{idle.rss_mb:.1f} / {first.rss_mb:.1f} / {last.rss_mb:.1f}"
                f" ({last.rss_mb - first.rss_mb:+.1f} in the window)",
            ),
            (
                f"trigger {EXECUTIONS} executions ({TRIGGER_THREADS} concurrent clients)",
                f"{triggered - started:.1f} s"
                f" ({EXECUTIONS / (triggered - started):.0f} triggers/s)",
            ),
            ("until all jobs are in Slurm (from the first trigger)", f"{in_slurm - started:.1f} s"),
            ("until every step has a job ID in the API", f"{all_ids - started:.1f} s"),
            ("squeue calls while submitting (both accounts)", f"{while_submitting}"),
            (
                "after scancel of every job: until all executions ended",
                f"{ended - cancelled:.1f} s, as "
                + ", ".join(f"{status} {n}" for status, n in sorted(ends.items()))
                if all_ended
                else f"not within {END_TIMEOUT:g} s: {dict(ends)}",
            ),
        ]
        table = Table(title="Tracking Slurm jobs", box=box.MARKDOWN, title_justify="left")
        table.add_column("measure")
        table.add_column("value")
        for row in rows:
            table.add_row(*row)
        Console(width=160).print(table)
        print(f"squeue calls per poll cycle: {counts}")
        print(f"server log: {ARTIFACTS / LOG_COPY} (after the run)")

        cpu_percent = 100 * cpu_seconds / (last.at - first.at)
        pairs_expected = ENVIRONMENTS * len(LOGINS)
        tracking_met = (
            counts == [pairs_expected] * OBSERVED_CYCLES
            and last.rss_mb <= RSS_LIMIT_MB
            and cpu_percent <= CPU_LIMIT_PERCENT
            and not failed_polls
        )
        record(
            "tracking",
            f"{len(job_ids)} jobs: squeue/cycle {min(counts, default=0)}-{max(counts, default=0)}"
            f" for {len(pairs)} pairs; RSS {last.rss_mb:.0f} MB; CPU {cpu_percent:.1f} %",
            tracking_met,
            "" if tracking_met else f"squeue per cycle {counts}, {len(failed_polls)} failed polls",
        )

        assert not failed_polls, failed_polls[:4]
        assert states["RUNNING"] + states["PENDING"] == EXECUTIONS, states
        assert len(pairs) == ENVIRONMENTS * len(LOGINS), pairs
        assert counts == [ENVIRONMENTS * len(LOGINS)] * OBSERVED_CYCLES, counts
        assert all_ended, ends
    finally:
        for client in clients.values():
            client.close()
