"""Workflows on a real cluster: sshd on 127.0.0.1:2222 and a one-node Slurm (cluster_support).

Each step runs as the user's own cluster account, through SSH with the key the service
generated for them; compute steps are Slurm jobs.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.cluster_support import Cluster
from tests.conftest import BIN, LiveServer, free_port, wait_for_status
from tests.environments_support import UNTRUSTED_HOST_KEY

PIPELINE = """
application: hpc
environments: [cluster]
expose: [pipeline, long, ticks]
workflows:
  pipeline:
    inputs:
      message: {type: string, default: hello}
      label: {type: string, default: run-1, pattern: "[A-Za-z0-9_.-]+"}
    steps:
      prepare:
        kind: shell
        run: |
          echo "login node says" {{ inputs.message }}
          printf 'import sys\\nprint("compss app got", sys.argv[1])\\n' > app.py
      compute:
        kind: slurm
        needs: [prepare]
        script: |
          echo "job says" {{ inputs.message }}
          echo "to stderr" >&2
          sleep 2
          echo {{ inputs.message }} > result.txt
        options: {ntasks: 1, time: "00:05:00"}
      analyse:
        kind: pycompss
        needs: [compute]
        app: app.py
        arguments: ["{{ inputs.label }}"]
        num_nodes: 1
    outputs:
      result: {step: compute, path: result.txt}
  long:
    inputs:
      seconds: {type: integer, default: 300}
    steps:
      wait:
        kind: slurm
        script: |
          echo started
          sleep {{ inputs.seconds }}
          echo finished
  ticks:
    steps:
      tick:
        kind: slurm
        script: |
          for i in $(seq 1 24); do echo "tick $i"; sleep 0.5; done
"""


class ClusterServer:
    """An hpcwaas server whose `cluster` environment is the loopback cluster."""

    def __init__(self, tmp_path: Path, cluster: Cluster, host_keys: list[str] | None = None):
        catalog = tmp_path / "catalog"
        catalog.mkdir(exist_ok=True)
        (catalog / "hpc.yaml").write_text(PIPELINE)
        environments = {
            "local": {"kind": "local"},
            "cluster": {
                "kind": "slurm",
                "name": "Loopback cluster",
                "host": cluster.host,
                "port": cluster.port,
                "host_keys": host_keys or [cluster.known_hosts],
                "poll_interval": 1,
                "unreachable_deadline": 120,
            },
        }
        self.server = LiveServer(tmp_path / "data", free_port())
        self.server.env["HPCWAAS_ENVIRONMENTS"] = json.dumps(environments)
        self.server.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(catalog)])
        self.home = tmp_path / "home"
        self.home.mkdir(exist_ok=True)

    def waas(
        self, token: str, *args: str, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HOME": str(self.home)}
        env.pop("HW_ACCESS_TOKEN", None)
        return subprocess.run(
            [str(BIN / "waas"), "--api_url", self.server.url, f"-t={token}", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )


@pytest.fixture
def hpc(tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster) -> Iterator[ClusterServer]:
    setup = ClusterServer(tmp_path, cluster)
    setup.server.start()
    yield setup
    setup.server.stop()


def _new_key(hpc: ClusterServer, cluster: Cluster, token: str, login: str) -> str:
    made = hpc.waas(token, "-o", "json", "ssh_keys", "key-gen")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    cluster.clear_authorized(login)
    cluster.authorize(login, key["public_key"])  # as a real user would
    return str(key["id"])


def _run_pipeline(
    hpc: ClusterServer, token: str, login: str, key: str, *inputs: str
) -> subprocess.CompletedProcess[str]:
    """`waas workflows trigger -f` of the pipeline as ``login`` with ``key``, and more inputs."""
    args = ["-i", f"user_id={login}", "-i", f"vault_id={key}"]
    for value in inputs:
        args += ["-i", value]
    return hpc.waas(token, "workflows", "trigger", "-f", *args, "hpc@cluster@pipeline")


def _execution_id(output: str) -> str:
    match = re.search(r"Workflow triggered with execution ID: (\S+)", output)
    assert match, output
    return match.group(1)


def test_pipeline_of_shell_slurm_and_pycompss_steps_runs_as_the_users_account(
    hpc: ClusterServer, cluster: Cluster
) -> None:
    token = hpc.server.token("alice")
    key = _new_key(hpc, cluster, token, "hpcuser1")
    hostile = "$(touch /tmp/hpcwaas-pwned) `id` ; ' \""
    Path("/tmp/hpcwaas-pwned").unlink(missing_ok=True)
    run = _run_pipeline(hpc, token, "hpcuser1", key, f"message={hostile}")
    assert run.returncode == 0, run.stdout + run.stderr
    execution_id = _execution_id(run.stdout)
    logs = hpc.waas(token, "executions", "logs", execution_id).stdout
    assert f"login node says {hostile}" in logs
    assert f"job says {hostile}" in logs
    assert "WARN: " in logs and "to stderr" in logs
    assert "compss app got run-1" in logs
    assert not Path("/tmp/hpcwaas-pwned").exists()
    status = hpc.waas(token, "-o", "json", "executions", "status", execution_id)
    body = json.loads(status.stdout)
    assert body["outputs"]["result"].strip() == hostile
    steps = {s["name"]: s for s in body["steps"]}
    assert steps["compute"]["job_id"] and steps["analyse"]["job_id"]
    owner = cluster.scontrol(steps["compute"]["job_id"])
    assert "UserId=hpcuser1(" in owner


def test_registered_identity_replaces_the_user_id_and_vault_id_inputs(
    hpc: ClusterServer, cluster: Cluster
) -> None:
    token = hpc.server.token("bob")
    key = _new_key(hpc, cluster, token, "hpcuser2")
    saved = hpc.waas(
        token, "environments", "set-identity", "cluster", "--login", "hpcuser2", "--key", key
    )
    assert saved.returncode == 0, saved.stderr
    run = hpc.waas(token, "workflows", "trigger", "-f", "hpc@cluster@pipeline")
    assert run.returncode == 0, run.stdout + run.stderr


def _trigger_long(hpc: ClusterServer, cluster: Cluster, user: str, login: str, seconds: int):
    token = hpc.server.token(user)
    key = _new_key(hpc, cluster, token, login)
    with hpc.server.client(token) as client:
        response = client.post(
            "/workflows/hpc@cluster@long",
            json={"inputs": {"user_id": login, "vault_id": key, "seconds": seconds}},
        )
        assert response.status_code == 201, response.text
        execution_id = response.headers["location"].rsplit("/", 1)[1]
        job_id = _wait_job_id(client, execution_id)
    return token, execution_id, job_id


def _wait_job_id(client: httpx.Client, execution_id: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step = client.get(f"/executions/{execution_id}").json()["steps"][0]
        if step.get("job_id"):
            return str(step["job_id"])
        time.sleep(0.2)
    raise AssertionError("the step was never submitted")


def _jobs_of(execution_id: str, login: str) -> list[str]:
    """Every job of ``login`` Slurm still knows (any state) submitted for the execution."""
    listed = subprocess.run(
        ["squeue", "-h", "--states=all", "-u", login, "-o", "%i %j"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return [line for line in listed.splitlines() if f"-{execution_id[:8]}-" in line]


def test_cancel_of_a_running_slurm_step_scancels_its_job(
    hpc: ClusterServer, cluster: Cluster
) -> None:
    token, execution_id, job_id = _trigger_long(hpc, cluster, "carol", "hpcuser1", 300)
    cluster.wait_job_state(job_id, {"RUNNING"})
    with hpc.server.client(token) as client:
        assert client.delete(f"/executions/{execution_id}").status_code == 202
        body = wait_for_status(client, execution_id, {"CANCELLED", "FAILED"}, timeout=30)
    assert body["status"] == "CANCELLED"
    assert cluster.wait_job_state(job_id, {"CANCELLED"}, timeout=10) == "CANCELLED"


def test_a_killed_server_follows_its_job_after_a_restart_and_submits_it_once(
    hpc: ClusterServer, cluster: Cluster
) -> None:
    token, execution_id, job_id = _trigger_long(hpc, cluster, "dave", "hpcuser2", 8)
    process = hpc.server.process
    assert process is not None
    process.send_signal(signal.SIGKILL)
    process.wait()
    hpc.server.start()
    with hpc.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=90)
        logs = client.get(f"/executions/{execution_id}/logs").json()["logs"]
    assert body["status"] == "SUCCEEDED", body
    assert body["steps"][0]["job_id"] == job_id
    assert any(e["content"] == "finished" for e in logs), logs
    assert len(_jobs_of(execution_id, "hpcuser2")) == 1


def test_a_killed_server_logs_each_line_of_its_job_once_after_a_restart(
    hpc: ClusterServer, cluster: Cluster
) -> None:
    token = hpc.server.token("tina")
    key = _new_key(hpc, cluster, token, "hpcuser1")
    with hpc.server.client(token) as client:
        response = client.post(
            "/workflows/hpc@cluster@ticks",
            json={"inputs": {"user_id": "hpcuser1", "vault_id": key}},
        )
        assert response.status_code == 201, response.text
        execution_id = response.headers["location"].rsplit("/", 1)[1]
        deadline = time.monotonic() + 60
        while not any(c.startswith("tick 3") for c in _contents(client, execution_id)):
            assert time.monotonic() < deadline, "the job never printed"
            time.sleep(0.2)
    assert hpc.server.process is not None
    hpc.server.process.send_signal(signal.SIGKILL)  # lines read, maybe not yet written
    hpc.server.process.wait()
    hpc.server.start()
    with hpc.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=90)
        ticks = [c for c in _contents(client, execution_id) if c.startswith("tick ")]
    assert body["status"] == "SUCCEEDED", body
    assert ticks == [f"tick {i}" for i in range(1, 25)]
    with sqlite3.connect(hpc.server.data_dir / "hpcwaas.sqlite3") as db:
        count, top = db.execute(
            "SELECT count(*), max(idx) + 1 FROM log_entries WHERE execution_id = ?",
            (execution_id,),
        ).fetchone()
    assert count == top, "log indices have holes"


def _contents(client: httpx.Client, execution_id: str) -> list[str]:
    logs = client.get(f"/executions/{execution_id}/logs", params={"timeout": "0s"}).json()
    return [entry["content"] for entry in logs["logs"]]


def test_the_execution_survives_sshd_down_for_30_seconds(
    hpc: ClusterServer, cluster: Cluster
) -> None:
    token, execution_id, _ = _trigger_long(hpc, cluster, "erin", "hpcuser1", 20)
    cluster.stop_sshd()
    try:
        time.sleep(30)
        with hpc.server.client(token) as client:
            during = client.get(f"/executions/{execution_id}").json()
        assert during["status"] == "RUNNING"
    finally:
        cluster.start_sshd()
    with hpc.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=90)
    assert body["status"] == "SUCCEEDED", body


def test_an_unknown_host_key_fails_the_step_before_anything_is_sent(
    tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster
) -> None:
    setup = ClusterServer(tmp_path, cluster, host_keys=[UNTRUSTED_HOST_KEY])
    setup.server.start()
    try:
        token = setup.server.token("frank")
        key = _new_key(setup, cluster, token, "hpcuser1")
        accepted_before = cluster.sshd_log.read_text().count("Accepted publickey")
        run = _run_pipeline(setup, token, "hpcuser1", key)
        assert run.returncode == 1
        execution_id = _execution_id(run.stdout)
        with setup.server.client(token) as client:
            body = client.get(f"/executions/{execution_id}").json()
        assert body["status"] == "FAILED"
        assert "host key" in body["error"]
        assert cluster.sshd_log.read_text().count("Accepted publickey") == accepted_before
    finally:
        setup.server.stop()


def test_a_job_cancelled_outside_hpcwaas_fails_the_execution(
    hpc: ClusterServer, cluster: Cluster
) -> None:
    token, execution_id, job_id = _trigger_long(hpc, cluster, "gina", "hpcuser2", 300)
    cluster.wait_job_state(job_id, {"RUNNING"})
    subprocess.run(["scancel", job_id], check=True, timeout=30)  # an administrator's scancel
    with hpc.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED", "CANCELLED"}, 30)
    assert body["status"] == "FAILED"
    assert "cancelled outside hpcwaas" in body["error"]


def test_metrics_after_a_cluster_run_count_slurm_polls_ssh_connections_and_steps(
    hpc: ClusterServer, cluster: Cluster
) -> None:
    token = hpc.server.token("hank")
    key = _new_key(hpc, cluster, token, "hpcuser1")
    run = _run_pipeline(hpc, token, "hpcuser1", key)
    assert run.returncode == 0, run.stdout + run.stderr
    execution_id = _execution_id(run.stdout)
    with hpc.server.client(token) as client:
        assert client.get(f"/executions/{execution_id}").json()["status"] == "SUCCEEDED"
    text = httpx.get(f"{hpc.server.url}/metrics", timeout=30).text

    def sample(name: str, **labels: str) -> float:
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                found = dict(re.findall(r'(\w+)="([^"]*)"', line.rsplit(" ", 1)[0]))
                if all(found.get(k) == v for k, v in labels.items()):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    assert sample("hpcwaas_slurm_polls_total") > 0, text
    assert sample("hpcwaas_ssh_connections_opened_total") > 0, text
    assert sample("hpcwaas_steps", kind="slurm", state="SUCCEEDED") > 0, text
    assert sample("hpcwaas_key_store_calls_total", operation="get") > 0, text


def _tree(root: Path) -> dict[str, int]:
    """Every path under ``root`` with its modification time: what a dry run must leave alone."""
    return {str(p): p.lstat().st_mtime_ns for p in [root, *root.rglob("*")]}


def test_dry_run_on_slurm_renders_the_batch_script_and_submits_nothing(
    hpc: ClusterServer, cluster: Cluster
) -> None:
    token = hpc.server.token("dora")
    key = _new_key(hpc, cluster, token, "hpcuser1")
    home = Path(pwd.getpwnam("hpcuser1").pw_dir)
    before_files = _tree(home)
    before_jobs = cluster.squeue("hpcuser1")
    inputs = {"user_id": "hpcuser1", "vault_id": key, "message": "it's $(id)"}
    with hpc.server.client(token) as client:
        response = client.post(
            "/workflows/hpc@cluster@pipeline", params={"dry_run": "true"}, json={"inputs": inputs}
        )
        assert response.status_code == 200, response.text
        plan = response.json()
        assert client.get("/executions").json()["executions"] == []
    assert plan["cluster_login"] == "hpcuser1"
    assert plan["work_dir"] == f".hpcwaas/executions/{plan['execution_id']}"
    steps = {s["name"]: s for s in plan["steps"]}
    assert [s["name"] for s in plan["steps"]] == ["prepare", "compute", "analyse"]
    assert steps["compute"]["needs"] == ["prepare"]
    assert "echo \"login node says\" 'it'\"'\"'s $(id)'" in steps["prepare"]["command"]
    assert "echo \"job says\" 'it'\"'\"'s $(id)'" in steps["compute"]["script"]
    assert "#SBATCH --ntasks=1" in steps["compute"]["batch_script"]
    assert "#SBATCH --time=00:05:00" in steps["compute"]["batch_script"]
    assert "sbatch" in steps["compute"]["command"]
    assert "enqueue_compss" in steps["analyse"]["command"]
    assert "app.py run-1" in steps["analyse"]["command"]
    # Nothing reached the cluster: no job (in any state), no file, no directory.
    assert cluster.squeue("hpcuser1") == before_jobs
    assert _jobs_of(plan["execution_id"], "hpcuser1") == []
    assert _tree(home) == before_files

    # The identity checks of a trigger apply: someone else's key is refused the same way.
    other = hpc.server.token("eve")
    with hpc.server.client(other) as client:
        refused = client.post(
            "/workflows/hpc@cluster@pipeline", params={"dry_run": "true"}, json={"inputs": inputs}
        )
        real = client.post("/workflows/hpc@cluster@pipeline", json={"inputs": inputs})
    # Someone else's key gets the answer an unknown key gets (key IDs leak nothing).
    assert refused.status_code == real.status_code == 400
    assert refused.json()["errors"][0]["detail"] == real.json()["errors"][0]["detail"]
    assert "generate one" in refused.json()["errors"][0]["detail"]
