"""Slurm steps submitted ahead (engine/ahead.py) on the loopback cluster (cluster_support).

A chain of slurm steps is submitted at once, each job with ``--dependency=afterok`` on the
job of its need: a failure in the middle cancels the rest in Slurm, a cancel of the execution
leaves no job behind, and a server killed mid-chain follows the same jobs after its restart.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.cluster_support import Cluster
from tests.conftest import LiveServer, free_port, wait_for_status

LOGIN = "hpcuser1"
CHAIN = ["one", "two", "three", "four"]

CATALOG = """
application: ahead
environments: [cluster]
expose: [chain, broken, slow, flaky]
workflows:
  chain:
    steps:
      one: {kind: slurm, script: "echo one; sleep 3"}
      two: {kind: slurm, needs: [one], script: "echo two; sleep 3"}
      three: {kind: slurm, needs: [two], script: "echo three; sleep 3"}
      four: {kind: slurm, needs: [three], script: "echo four; sleep 1"}
  broken:
    steps:
      one: {kind: slurm, script: "sleep 1"}
      two: {kind: slurm, needs: [one], script: "echo failing; exit 3"}
      three: {kind: slurm, needs: [two], script: "echo never"}
      four: {kind: slurm, needs: [three], script: "echo never"}
    on_failure:
      tidy: {kind: shell, run: "echo tidied up"}
  flaky:
    steps:
      one: {kind: slurm, script: "sleep 1"}
      flaky:
        kind: slurm
        needs: [one]
        retries: 1
        retry_delay: 1
        script: "if [ -e flaky.done ]; then echo second try; else touch flaky.done; exit 1; fi"
      after: {kind: slurm, needs: [flaky], script: "echo after ran"}
  slow:
    steps:
      one: {kind: slurm, script: "sleep 300"}
      two: {kind: slurm, needs: [one], script: "sleep 1"}
      three: {kind: slurm, needs: [two], script: "sleep 1"}
"""


@pytest.fixture
def server(tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster) -> Iterator[LiveServer]:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "ahead.yaml").write_text(CATALOG)
    environments = {
        "cluster": {
            "kind": "slurm",
            "name": "Loopback cluster",
            "host": cluster.host,
            "port": cluster.port,
            "host_keys": [cluster.known_hosts],
            "poll_interval": 1,
        }
    }
    live = LiveServer(tmp_path / "data", free_port())
    live.env["HPCWAAS_ENVIRONMENTS"] = json.dumps(environments)
    live.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(catalog)])
    live.start()
    yield live
    live.stop()


def _client_and_key(server: LiveServer, cluster: Cluster) -> tuple[httpx.Client, str]:
    client = server.client(server.token("ahead-user"))
    made = client.post("/ssh_keys")
    assert made.status_code == 201, made.text
    cluster.clear_authorized(LOGIN)
    cluster.authorize(LOGIN, made.json()["public_key"])
    return client, str(made.json()["id"])


def _trigger(client: httpx.Client, key: str, workflow: str) -> str:
    made = client.post(
        f"/workflows/ahead@cluster@{workflow}",
        json={"inputs": {"user_id": LOGIN, "vault_id": key}},
    )
    assert made.status_code == 201, made.text
    return str(made.headers["location"]).rsplit("/", 1)[1]


def _steps(client: httpx.Client, execution_id: str) -> dict[str, dict[str, object]]:
    body = client.get(f"/executions/{execution_id}").json()
    return {str(s["name"]): s for s in body["steps"]}


def _wait_all_submitted(
    client: httpx.Client, execution_id: str, names: list[str], timeout: float = 60
) -> dict[str, dict[str, object]]:
    deadline = time.monotonic() + timeout
    steps: dict[str, dict[str, object]] = {}
    while time.monotonic() < deadline:
        steps = _steps(client, execution_id)
        if all(steps[name].get("job_id") for name in names):
            return steps
        time.sleep(0.1)
    raise AssertionError(f"not every step has a job: {steps}")


def _logs(client: httpx.Client, execution_id: str) -> str:
    body = client.get(f"/executions/{execution_id}/logs", params={"size": 1000, "levels": 15})
    return "\n".join(entry["content"] for entry in body.json()["logs"])


def _jobs_of(execution_id: str) -> list[tuple[str, str, str]]:
    """(job ID, state, step) of every job Slurm still knows for the execution."""
    queue = subprocess.run(
        ["squeue", "-h", "--states=all", "-u", LOGIN, "-o", "%i|%T|%k"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    prefix = f"hpcwaas:{execution_id}:"
    jobs = []
    for line in queue.splitlines():
        job_id, state, comment = line.split("|", 2)
        if comment.startswith(prefix):
            jobs.append((job_id, state, comment[len(prefix) :]))
    return jobs


def test_failure_in_a_submitted_ahead_chain_cancels_the_rest_in_slurm_and_runs_on_failure(
    server: LiveServer, cluster: Cluster
) -> None:
    client, key = _client_and_key(server, cluster)
    execution_id = _trigger(client, key, "broken")
    body = wait_for_status(client, execution_id, {"FAILED"}, timeout=90)
    assert "step two failed" in str(body["error"])
    steps = _steps(client, execution_id)
    assert steps["one"]["state"] == "SUCCEEDED"
    assert steps["two"]["state"] == "FAILED"
    for name in ("three", "four"):
        assert steps[name]["state"] == "CANCELLED", steps[name]
        job_id = str(steps[name]["job_id"])
        assert cluster.wait_job_state(job_id, {"CANCELLED"}, timeout=30) == "CANCELLED"
    left = [job for job in _jobs_of(execution_id) if job[1] in ("PENDING", "RUNNING")]
    assert left == [], f"jobs left in Slurm: {left}"
    logs = _logs(client, execution_id)
    assert "tidied up" in logs and "Cleanup step tidy succeeded" in logs
    assert "never" not in logs
    client.close()


def test_cancel_of_an_execution_leaves_none_of_its_submitted_ahead_jobs_in_squeue(
    server: LiveServer, cluster: Cluster
) -> None:
    client, key = _client_and_key(server, cluster)
    execution_id = _trigger(client, key, "slow")
    steps = _wait_all_submitted(client, execution_id, ["one", "two", "three"])
    assert steps["two"]["state"] == "WAITING" and steps["three"]["state"] == "WAITING"
    dependency = cluster.scontrol(str(steps["three"]["job_id"]))
    assert f"Dependency=afterok:{steps['two']['job_id']}" in dependency
    assert client.delete(f"/executions/{execution_id}").status_code in (200, 202, 204)
    wait_for_status(client, execution_id, {"CANCELLED"}, timeout=60)
    left = [job for job in _jobs_of(execution_id) if job[1] in ("PENDING", "RUNNING")]
    assert left == [], f"jobs left in Slurm: {left}"
    assert {s["state"] for s in _steps(client, execution_id).values()} == {"CANCELLED"}
    client.close()


def test_server_killed_mid_chain_follows_the_same_jobs_after_restart(
    server: LiveServer, cluster: Cluster
) -> None:
    client, key = _client_and_key(server, cluster)
    execution_id = _trigger(client, key, "chain")
    submitted = _wait_all_submitted(client, execution_id, CHAIN)
    jobs = {name: str(submitted[name]["job_id"]) for name in CHAIN}
    client.close()
    assert server.process is not None
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()

    server.start()
    with server.client(server.token("ahead-user")) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=120)
        assert body["status"] == "SUCCEEDED", body
        steps = _steps(client, execution_id)
        assert {name: str(steps[name]["job_id"]) for name in CHAIN} == jobs
        logs = _logs(client, execution_id)
    by_step: dict[str, list[str]] = {}
    for job_id, _state, step in _jobs_of(execution_id):
        by_step.setdefault(step, []).append(job_id)
    assert by_step == {name: [jobs[name]] for name in CHAIN}, "each step submitted once"
    for name in CHAIN:
        assert re.search(rf"^{name}$", logs, re.MULTILINE), f"output of {name} not logged"


def test_a_retried_step_repoints_the_job_waiting_on_it_to_its_new_job(
    server: LiveServer, cluster: Cluster
) -> None:
    client, key = _client_and_key(server, cluster)
    execution_id = _trigger(client, key, "flaky")
    body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=120)
    assert body["status"] == "SUCCEEDED", body
    steps = _steps(client, execution_id)
    logs = _logs(client, execution_id)
    assert "second try" in logs and "after ran" in logs
    waiting = str(steps["after"]["job_id"])
    assert f"Slurm job {waiting} now waits for jobs {steps['flaky']['job_id']}" in logs
    by_step: dict[str, list[str]] = {}
    for job_id, _state, step in _jobs_of(execution_id):
        by_step.setdefault(step, []).append(job_id)
    assert len(by_step["flaky"]) == 2 and by_step["after"] == [waiting]
    client.close()
