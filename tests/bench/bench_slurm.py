"""Benchmark: latencies of Slurm work (docs/performance.md, rows 4, 6 and 8).

Not a test: named bench_*, so only scripts/bench.sh collects it. The server's `cluster`
environment is the loopback cluster of tests/cluster_support.py (sshd on 127.0.0.1:2222,
single-node Slurm) with the default poll interval; its hpcwaas user runs as hpcuser1.

* submit: trigger -> the engine's "submitted as Slurm job N" log entry (written as soon as
  sbatch answered), with the SSH pool warm, against `sbatch --parsable` run over an SSH
  connection that is already open (asyncssh, the same account); medians of SUBMITS each.
* job output: a job prints a line with its own clock every 1.7 s; `waas executions logs -f`
  runs meanwhile, and each line's delay from the job's clock to the CLI's stdout is measured.
* cancel: DELETE /executions/{id} of a running step -> the job is CANCELLED in Slurm (read
  with scontrol as root).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import asyncssh
import httpx
import pytest
from tests.bench.support import cluster_server, median, record, wait_until
from tests.cluster_support import Cluster
from tests.conftest import BIN, LiveServer

from hpcwaas.settings import SlurmEnvironment

LOGIN = "hpcuser1"
SUBMITS = 7
TICKS = 8
POLL_INTERVAL = SlurmEnvironment.model_fields["poll_interval"].default
SUBMIT_EXTRA_MS = 100.0
OUTPUT_LIMIT = POLL_INTERVAL + 0.5
CANCEL_LIMIT = POLL_INTERVAL + 1.0
SUBMITTED = re.compile(r"submitted as Slurm job (\d+)")
TICK = re.compile(r"tick (\d+\.\d+)")

CATALOG = f"""
application: bench
environments: [cluster]
expose: [short, talk, long]
workflows:
  short:
    steps:
      run: {{kind: slurm, script: "sleep 20", options: {{ntasks: 1}}}}
  talk:
    steps:
      run:
        kind: slurm
        options: {{ntasks: 1}}
        script: |
          for i in $(seq {TICKS}); do echo "tick $(date +%s.%N)"; sleep 1.7; done
  long:
    steps:
      run: {{kind: slurm, script: "sleep 600", options: {{ntasks: 1}}}}
"""


@pytest.fixture
def slurm_server(tmp_path: Path, cluster: Cluster) -> Iterator[LiveServer]:
    with cluster_server(tmp_path, cluster, CATALOG) as server:
        yield server


@pytest.fixture
def user_client(slurm_server: LiveServer, cluster: Cluster) -> Iterator[tuple[httpx.Client, str]]:
    """A client of the server and the ID of its SSH key, authorized for LOGIN."""
    with slurm_server.client(slurm_server.token("bench-slurm")) as client:
        made = client.post("/ssh_keys")
        assert made.status_code == 201, made.text
        cluster.clear_authorized(LOGIN)
        cluster.authorize(LOGIN, made.json()["public_key"])
        yield client, made.json()["id"]


def _trigger(client: httpx.Client, key_id: str, workflow: str) -> str:
    made = client.post(
        f"/workflows/bench@cluster@{workflow}",
        json={"inputs": {"user_id": LOGIN, "vault_id": key_id}},
    )
    assert made.status_code == 201, made.text
    return str(made.headers["location"])


def _submitted_at(client: httpx.Client, execution: str) -> tuple[float, str]:
    """When the engine logged the step's submission (epoch seconds), and the job ID."""
    position = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = client.get(
            execution + "/logs", params={"from": position, "timeout": "20s", "levels": 15}
        ).json()
        for entry in body["logs"]:
            match = SUBMITTED.search(entry["content"])
            if match:
                stamp = entry["timestamp"].replace("Z", "+00:00")
                return datetime.fromisoformat(stamp).timestamp(), match.group(1)
        position = body["from"] + len(body["logs"])
    raise AssertionError(f"{execution}: no submission within 60 s")


async def _bare_sbatch_ms(cluster: Cluster, runs: int) -> list[float]:
    """Milliseconds of `sbatch --parsable` over one already-open SSH connection."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    cluster.authorize(LOGIN, key.export_public_key().decode())
    times = []
    async with asyncssh.connect(
        cluster.host,
        port=cluster.port,
        username=LOGIN,
        client_keys=[key],
        known_hosts=asyncssh.import_known_hosts(cluster.known_hosts),
    ) as connection:
        await connection.run("true", check=True)
        for _ in range(runs):
            start = time.perf_counter()
            result = await connection.run(
                "sbatch --parsable --ntasks=1 --output=/dev/null --wrap 'sleep 20'", check=True
            )
            times.append((time.perf_counter() - start) * 1000)
            assert str(result.stdout).strip().isdigit(), result.stdout
    return times


def test_trigger_reaches_sbatch_almost_as_fast_as_a_bare_sbatch(
    user_client: tuple[httpx.Client, str], cluster: Cluster
) -> None:
    client, key_id = user_client
    _submitted_at(client, _trigger(client, key_id, "short"))  # warms the SSH pool
    through_api = []
    for _ in range(SUBMITS):
        start = time.time()
        submitted, _job = _submitted_at(client, _trigger(client, key_id, "short"))
        through_api.append((submitted - start) * 1000)
    bare = asyncio.run(_bare_sbatch_ms(cluster, SUBMITS))
    extra = median(through_api) - median(bare)
    print("trigger -> sbatch ms", [round(t) for t in through_api], "bare", [round(t) for t in bare])
    met = extra <= SUBMIT_EXTRA_MS
    record(
        "submit",
        f"+{extra:.0f} ms ({median(through_api):.0f} ms vs bare sbatch {median(bare):.0f} ms)",
        met,
        ""
        if met
        else "before sbatch the engine creates the step's working directory and "
        "uploads its script, each a round trip over SSH",
    )


def test_a_job_line_reaches_waas_logs_follow_within_a_poll(
    slurm_server: LiveServer, user_client: tuple[httpx.Client, str]
) -> None:
    client, key_id = user_client
    token = client.headers["authorization"].split(" ", 1)[1]
    execution = _trigger(client, key_id, "talk")
    follow = subprocess.Popen(
        [
            str(BIN / "waas"),
            "--api_url",
            slurm_server.url,
            f"-t={token}",
            "executions",
            "logs",
            "-f",
            execution.rsplit("/", 1)[1],
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    delays: list[float] = []

    def read() -> None:
        assert follow.stdout is not None
        for line in follow.stdout:
            match = TICK.search(line)
            if match:
                delays.append(time.time() - float(match.group(1)))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        follow.wait(timeout=120)
    finally:
        if follow.poll() is None:
            follow.kill()
        reader.join(10)
    assert len(delays) == TICKS, delays
    print("job line -> waas logs -f, s:", [round(d, 2) for d in delays])
    worst = max(delays)
    met = worst <= OUTPUT_LIMIT
    record(
        "job_output",
        f"{worst:.2f} s at most, {median(delays):.2f} s median ({TICKS} lines)",
        met,
        "" if met else "job output files are read once per poll cycle (interval + poll time)",
    )


def test_cancel_of_a_running_step_cancels_its_job_at_once(
    user_client: tuple[httpx.Client, str], cluster: Cluster
) -> None:
    client, key_id = user_client
    execution = _trigger(client, key_id, "long")
    _submitted, job_id = _submitted_at(client, execution)
    wait_until(lambda: cluster.job_state(job_id) == "RUNNING", 60, f"job {job_id} running")
    start = time.monotonic()
    assert client.delete(execution).status_code == 202
    cancelled = wait_until(
        lambda: cluster.job_state(job_id) == "CANCELLED", 60, f"job {job_id} cancelled", 0.02
    )
    seconds = cancelled - start
    met = seconds <= CANCEL_LIMIT
    record(
        "cancel",
        f"{seconds:.2f} s",
        met,
        "" if met else "scancel waits for the account's next poll",
    )
