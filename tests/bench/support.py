"""What the benchmarks share: the one results table, wrk, CPU pinning, timing helpers.

Each benchmark records its rows with ``record``; tests/bench/conftest.py prints them as one
table at the end of the run (rows in the order of ``TARGETS``, one per target of
docs/performance.md) and writes them to test-artifacts/bench-results.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.cluster_support import Cluster
from tests.conftest import LiveServer, free_port

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
RESULTS_FILE = ARTIFACTS / "bench-results.json"

# The load generator and the server under test each get one of the two cores.
LOAD_CPU = 0
SERVER_CPU = 1

# (key, what is measured, target): the rows of the final table, in this order.
TARGETS: list[tuple[str, str, str]] = [
    (
        "reads",
        "GET /executions/{id} and GET /workflows, 64 connections (wrk), SQLite, bearer tokens",
        ">= 2,000 requests/s, p99 <= 50 ms",
    ),
    ("reads_ratio", "the same, as a ratio to a bare FastAPI endpoint (same run)", ">= 0.5"),
    ("triggers", "POST /workflows/{id} accepted, 32 clients, 64 users", ">= 300 triggers/s"),
    (
        "submit",
        "trigger -> sbatch done (warm SSH pool) minus bare sbatch over an open SSH connection",
        "<= 100 ms more (median)",
    ),
    (
        "log_wakeup",
        "engine log entry -> a client blocked in the logs long-poll",
        "<= 50 ms (median)",
    ),
    (
        "job_output",
        "a line written by a running Slurm job -> `waas executions logs -f`",
        "<= poll interval + 0.5 s (5.5 s)",
    ),
    (
        "tracking",
        "1,000 executions tracked at once (Slurm jobs), one process, default poll interval",
        "squeue/interval = (environment, login) pairs; RSS <= 300 MB; CPU <= 10 % of a core",
    ),
    (
        "cancel",
        "cancel of a running Slurm step -> job CANCELLED in Slurm",
        "<= poll interval + 1 s",
    ),
    (
        "dls_trigger",
        "trigger -> Airflow DAG run created, minus a bare POST of a run to the same Airflow",
        "<= 100 ms more (median)",
    ),
    (
        "dls_follow",
        "200 DAG runs followed at once (LocalExecutor on PostgreSQL)",
        "run list requests per poll <= ceil(runs / 100); CPU and RSS reported",
    ),
    ("cli_help", "`waas --help` vs `python -c pass` (same run)", "<= 5x"),
    ("cli_list", "`waas workflows list` vs a minimal stdlib script doing the same GET", "<= 2.5x"),
]
TARGET_KEYS = [key for key, _, _ in TARGETS]


@dataclass
class Row:
    """One measured target: the value as shown, whether it met the target, and why not."""

    key: str
    measured: str
    met: bool
    note: str = ""


def record(key: str, measured: str, met: bool, note: str = "") -> None:
    """Add (or replace) one row of the final table."""
    assert key in TARGET_KEYS, key
    ARTIFACTS.mkdir(exist_ok=True)
    rows = load_rows()
    rows[key] = Row(key, measured, met, note)
    RESULTS_FILE.write_text(json.dumps([asdict(r) for r in rows.values()], indent=1))
    print(f"\n[{key}] {measured} -> {'met' if met else 'not met'} {note}".rstrip())


def load_rows() -> dict[str, Row]:
    """The rows recorded so far in this run."""
    if not RESULTS_FILE.exists():
        return {}
    return {r["key"]: Row(**r) for r in json.loads(RESULTS_FILE.read_text())}


def pin(pid: int, cpu: int) -> None:
    """Pin every thread of process ``pid`` (and so the children it starts later) to ``cpu``."""
    subprocess.run(["taskset", "-a", "-cp", str(cpu), str(pid)], check=True, capture_output=True)


@dataclass
class WrkRun:
    """One wrk run: throughput, latency percentiles (ms), and answers that were not 2xx/3xx."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    assert match, text
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


SETTLE_SECONDS = 1.0


def wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
    script_args: list[str] | None = None,
) -> WrkRun:
    """Run wrk (one thread, pinned to LOAD_CPU) against ``url``; its parsed summary.

    Each run starts SETTLE_SECONDS after the previous one ended: wrk exits without closing
    its connections, and a run started while a server is still tearing down the previous
    run's 64 aborted connections saw about 1 % of its requests wait ~300 ms (p99 300 ms
    against 25 ms after a pause; not seen with a client that closes its connections).
    """
    time.sleep(SETTLE_SECONDS)
    command = ["taskset", "-c", str(LOAD_CPU), wrk_path(), "-t1", f"-c{connections}"]
    command += [f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    if script_args:
        command += ["--", *script_args]
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    assert rps and p50 and p99, out
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    failed = int(errors.group(1)) if errors else 0
    if socket_errors:
        failed += sum(int(n) for n in socket_errors.groups())
    return WrkRun(float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), failed)


def wrk_path() -> str:
    found = shutil.which("wrk")
    assert found, "wrk is missing: scripts/bench.sh installs it (Debian package wrk)"
    return found


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed_runs(command: list[str], runs: int, env: dict[str, str] | None = None) -> list[float]:
    """Wall seconds of ``runs`` runs of ``command`` (which must succeed)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env or dict(os.environ))
        times.append(time.perf_counter() - start)
    return times


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> float:
    """Poll ``check`` until it is true; the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(step)
    raise AssertionError(f"{what}: not within {timeout:g} s")


@contextmanager
def cluster_server(
    tmp_path: Path,
    cluster: Cluster,
    catalog: str,
    *,
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[LiveServer]:
    """A started server whose `cluster` environment is the loopback cluster (default poll
    interval) and whose catalog is ``catalog``; the cluster's jobs are cancelled around it."""
    directory = tmp_path / "catalog"
    directory.mkdir()
    (directory / "bench.yaml").write_text(catalog)
    environments = {
        "cluster": {
            "kind": "slurm",
            "name": "Loopback cluster",
            "host": cluster.host,
            "port": cluster.port,
            "host_keys": [cluster.known_hosts],
        }
    }
    server = LiveServer(tmp_path / "data", free_port(), extra_args=extra_args or [])
    server.env["HPCWAAS_ENVIRONMENTS"] = json.dumps(environments)
    server.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(directory)])
    server.env.update(env or {})
    cluster.cancel_jobs()
    server.start()
    try:
        yield server
    finally:
        try:
            cluster.cancel_jobs(timeout=60)
        finally:
            server.stop()
