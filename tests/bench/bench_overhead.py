"""Benchmark: step-to-step overhead of Slurm workflows against Slurm's own dependencies
(docs/performance.md, rows "overhead").

Not a test: named bench_*, so only scripts/bench.sh collects it (`bash scripts/bench.sh -k
overhead` runs it alone). The server's ``cluster`` environment is the loopback cluster of
tests/cluster_support.py with the default poll interval; its hpcwaas user runs as hpcuser1.

* hpcwaas: the time from the trigger's 201 to the execution's terminal status, read through
  the API every 0.05 s, of a chain of 20 one-second ``slurm`` steps, then of a 1 -> 8 -> 1
  fan-out/fan-in of one-second steps (one warm-up execution first: the SSH pool is open).
* by hand, in the same run: the same jobs submitted as hpcuser1 on the login node with
  ``sbatch --dependency=afterok`` (no SSH), then ``squeue`` every 0.2 s until none of them is
  left pending, running or completing.
* squeue calls: the server's debug lines ``squeue for LOGIN@HOST:PORT`` while the workflows
  ran; at most one per poll interval for the one (environment, login) pair.

Each comparison is the median of RUNS runs of each side.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from tests.bench.support import cluster_server, median, record
from tests.cluster_support import Cluster
from tests.conftest import LiveServer

from hpcwaas.settings import SlurmEnvironment

LOGIN = "hpcuser1"
RUNS = 2
CHAIN = 20
FAN = 8
LIMIT = 1.2
POLL_INTERVAL = SlurmEnvironment.model_fields["poll_interval"].default
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}
SQUEUE_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) DEBUG hpcwaas\.engine\.jobs: squeue for (\S+):"
)


def _step(name: str, needs: list[str]) -> str:
    return f"      {name}: {{kind: slurm, needs: [{', '.join(needs)}], script: 'sleep 1'}}\n"


def _catalog() -> str:
    chain = "".join(_step(f"s{i:02d}", [f"s{i - 1:02d}"] if i else []) for i in range(CHAIN))
    fan = _step("first", []) + "".join(_step(f"b{i}", ["first"]) for i in range(FAN))
    fan += _step("last", [f"b{i}" for i in range(FAN)])
    return (
        "application: overhead\nenvironments: [cluster]\nexpose: [warm, chain, fan]\n"
        "workflows:\n"
        f"  warm:\n    steps:\n{_step('only', [])}"
        f"  chain:\n    steps:\n{chain}"
        f"  fan:\n    steps:\n{fan}"
    )


@pytest.fixture
def overhead_server(tmp_path: Path, cluster: Cluster) -> Iterator[LiveServer]:
    with cluster_server(
        tmp_path, cluster, _catalog(), extra_args=["--log_level", "debug"]
    ) as server:
        yield server


def _through_hpcwaas(client: httpx.Client, key: str, workflow: str) -> float:
    """Seconds from the trigger's 201 to the terminal status; the run must succeed."""
    made = client.post(
        f"/workflows/overhead@cluster@{workflow}",
        json={"inputs": {"user_id": LOGIN, "vault_id": key}},
    )
    assert made.status_code == 201, made.text
    start = time.monotonic()
    location = made.headers["location"]
    while True:
        body = client.get(location).json()
        if body["status"] in TERMINAL:
            took = time.monotonic() - start
            assert body["status"] == "SUCCEEDED", body
            return took
        assert time.monotonic() - start < 300, body
        time.sleep(0.05)


BY_HAND = """
set -e
submit() {{ sbatch --parsable --ntasks=1 --output=/dev/null "$@" --wrap 'sleep 1'; }}
start=$(date +%s%N)
{submissions}
ids="{ids}"
while squeue -h -j "$ids" --states=PENDING,RUNNING,COMPLETING,CONFIGURING,SUSPENDED \\
    -o %i 2>/dev/null | grep -q .; do sleep 0.2; done
end=$(date +%s%N)
echo "took_ns $((end - start))"
"""


def _by_hand(cluster: Cluster, edges: list[tuple[str, list[str]]]) -> float:
    """Seconds of the same jobs by hand: sbatch --dependency=afterok, squeue every 0.2 s."""
    lines = []
    for name, needs in edges:
        after = f"--dependency=afterok:{':'.join('$' + n for n in needs)}" if needs else ""
        lines.append(f"{name}=$(submit {after})")
    script = BY_HAND.format(
        submissions="\n".join(lines), ids=",".join("$" + name for name, _ in edges)
    )
    result = cluster.run_as(LOGIN, script, timeout=300)
    match = re.search(r"took_ns ([0-9]+)", result.stdout)
    assert result.returncode == 0 and match, result.stdout + result.stderr
    return int(match.group(1)) / 1e9


def _squeue_times(log: Path) -> list[float]:
    times = []
    for line in log.read_text(errors="replace").splitlines():
        match = SQUEUE_LINE.match(line)
        if match:
            times.append(datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return times


def _compare(key: str, what: str, ours: list[float], hand: list[float]) -> None:
    ratio = median(ours) / median(hand)
    print(f"{what}: hpcwaas {[round(t, 2) for t in ours]} s, by hand {[round(t, 2) for t in hand]}")
    record(
        key,
        f"{ratio:.2f}x ({median(ours):.1f} s vs {median(hand):.1f} s by hand)",
        ratio <= LIMIT,
        "" if ratio <= LIMIT else f"hpcwaas takes {ratio:.2f}x the hand-written chain",
    )


def test_workflows_run_at_slurm_dependency_speed(
    overhead_server: LiveServer, cluster: Cluster
) -> None:
    chain = [(f"s{i:02d}", [f"s{i - 1:02d}"] if i else []) for i in range(CHAIN)]
    fan = [("first", []), *((f"b{i}", ["first"]) for i in range(FAN))]
    fan.append(("last", [f"b{i}" for i in range(FAN)]))
    with overhead_server.client(overhead_server.token("bench-overhead")) as client:
        made = client.post("/ssh_keys")
        assert made.status_code == 201, made.text
        cluster.clear_authorized(LOGIN)
        cluster.authorize(LOGIN, made.json()["public_key"])
        key = made.json()["id"]
        _through_hpcwaas(client, key, "warm")
        results: dict[str, tuple[list[float], list[float]]] = {}
        windows: list[tuple[float, float]] = []
        for workflow, edges in (("chain", chain), ("fan", fan)):
            ours, hand = [], []
            for _ in range(RUNS):
                began = time.time()
                ours.append(_through_hpcwaas(client, key, workflow))
                windows.append((began, time.time()))
                hand.append(_by_hand(cluster, edges))
            results[workflow] = (ours, hand)
    _compare("overhead_chain", f"chain of {CHAIN}", *results["chain"])
    _compare("overhead_fan", f"1 -> {FAN} -> 1", *results["fan"])
    calls = _squeue_times(overhead_server.log_path)
    busiest, total, seconds = 0, 0, 0.0
    for began, ended in windows:
        inside = [t for t in calls if began <= t <= ended]
        total += len(inside)
        seconds += ended - began
        # Calls within one poll interval of each other (a little slack for the clock).
        for i, at in enumerate(inside):
            busiest = max(busiest, sum(1 for t in inside[i:] if t - at < POLL_INTERVAL * 0.9))
    per_interval = total / (seconds / POLL_INTERVAL)
    record(
        "overhead_squeue",
        f"{total} squeue calls in {seconds:.0f} s ({per_interval:.2f} per {POLL_INTERVAL:g} s "
        f"interval; at most {busiest} within one interval)",
        busiest <= 1,
        "" if busiest <= 1 else "more than one squeue within one poll interval",
    )
