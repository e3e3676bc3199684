"""One execution, its steps on two environments: a TOSCA topology with two AbstractEnvironments
mapped to two environments configured on the loopback cluster, each with its own account.

The two environments are the same Slurm cluster reached as two environment IDs with different
working roots (``hpc-a``: ``.hpcwaas``, ``hpc-b``: ``site-b``): a step that ran on the wrong
one shows in the account, the directory and the job's owner.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster_support import Cluster
from tests.conftest import wait_for_status
from tests.integration.test_cluster_runs import ClusterServer

WHERE_APP = """\
import getpass, os, sys, time
print(f"{sys.argv[1]} ran as {getpass.getuser()} in {os.getcwd()}", flush=True)
time.sleep(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
print(f"{sys.argv[1]} finished")
"""

TOPOLOGY = """\
tosca_definitions_version: alien_dsl_3_0_0
metadata:
  template_name: twosites
  hpcwaas-workflows: exec_job
  hpcwaas-environments: Cluster1Environment=hpc-a,Cluster2Environment=hpc-b
imports:
  - eflows4hpc.env:1.1.0
  - org.eflows4hpc.pycompss.plugin:1.1.0
topology_template:
  node_templates:
    Cluster1Environment:
      type: eflows4hpc.env.nodes.AbstractEnvironment
    Cluster2Environment:
      type: eflows4hpc.env.nodes.AbstractEnvironment
    CountCluster1:
      type: org.eflows4hpc.pycompss.plugin.nodes.PyCOMPSJob
      properties:
        submission_params: {num_nodes: 1, python_interpreter: python3}
        application: {command: "@APP@", arguments: [first]}
      requirements:
        - dependsOnCluster1EnvironmentExec_env:
            {type_requirement: environment, node: Cluster1Environment}
    CountCluster2:
      type: org.eflows4hpc.pycompss.plugin.nodes.PyCOMPSJob
      properties:
        submission_params: {num_nodes: 1, python_interpreter: python3}
        application: {command: "@APP@", arguments: [second, "${seconds}"]}
      requirements:
        - dependsOnCluster2EnvironmentExec_env:
            {type_requirement: environment, node: Cluster2Environment}
  workflows:
    exec_job:
      inputs:
        seconds: {type: integer, default: 0}
      steps:
        CountCluster1_run:
          target: CountCluster1
          activities: [{call_operation: tosca.interfaces.node.lifecycle.Runnable.run}]
          on_success: [CountCluster2_run]
        CountCluster2_run:
          target: CountCluster2
          activities: [{call_operation: tosca.interfaces.node.lifecycle.Runnable.run}]
"""


# Our own format: a step's outputs and a workflow output across the two environments.
HANDOVER = """\
application: handover
environments: [hpc-a]
expose: [run]
workflows:
  run:
    steps:
      locate:
        kind: shell
        outputs: [where]
        run: 'echo "where=$(whoami):$(pwd)" >> "$HPCWAAS_OUTPUTS"'
      report:
        kind: shell
        environment: hpc-b
        needs: [locate]
        run: 'echo {{ steps.locate.outputs.where }} "then $(whoami):$(pwd)" > report.txt'
    outputs:
      report: {step: report, path: report.txt}
"""


# From the server's own host, a job on the cluster: the execution ends with the server.
FROM_HERE = """\
application: fromhere
environments: [local]
expose: [run]
workflows:
  run:
    steps:
      compute: {kind: slurm, script: "sleep 300", environment: hpc-a}
"""


@pytest.fixture
def app_dir() -> Iterator[Path]:
    """A directory every cluster account may read, holding the application."""
    directory = Path(tempfile.mkdtemp(prefix="hpcwaas-twosites-"))
    directory.chmod(0o755)
    app = directory / "where.py"
    app.write_text(WHERE_APP)
    app.chmod(0o644)
    yield directory
    shutil.rmtree(directory)


@pytest.fixture
def two_sites(
    tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster, app_dir: Path
) -> Iterator[ClusterServer]:
    setup = ClusterServer(tmp_path, cluster)
    environments = json.loads(setup.server.env["HPCWAAS_ENVIRONMENTS"])
    loopback = environments.pop("cluster")
    environments["hpc-a"] = {**loopback, "name": "Site A"}
    environments["hpc-b"] = {**loopback, "name": "Site B", "work_root": "site-b"}
    setup.server.env["HPCWAAS_ENVIRONMENTS"] = json.dumps(environments)
    catalog = tmp_path / "catalog"
    for old in catalog.iterdir():
        old.unlink()  # the pipeline of ClusterServer runs on `cluster`, not configured here
    (catalog / "twosites.yaml").write_text(TOPOLOGY.replace("@APP@", str(app_dir / "where.py")))
    (catalog / "handover.yaml").write_text(HANDOVER)
    (catalog / "fromhere.yaml").write_text(FROM_HERE)
    setup.server.start()
    yield setup
    setup.server.stop()
    for login in ("hpcuser1", "hpcuser2"):  # the second environment's root, this test's only
        shutil.rmtree(Path(pwd.getpwnam(login).pw_dir, "site-b"), ignore_errors=True)


def _authorized_key(setup: ClusterServer, cluster: Cluster, token: str, *logins: str) -> str:
    made = setup.waas(token, "-o", "json", "ssh_keys", "key-gen")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    for login in logins:
        cluster.clear_authorized(login)
        cluster.authorize(login, key["public_key"])
    return str(key["id"])


def test_two_environment_topology_runs_each_node_on_its_own_environment_and_account(
    two_sites: ClusterServer, cluster: Cluster
) -> None:
    token = two_sites.server.token("alice")
    listed = two_sites.waas(token, "-o", "json", "workflows", "list")
    assert listed.returncode == 0, listed.stderr
    assert "twosites@hpc-a@exec_job" in [w["id"] for w in json.loads(listed.stdout)]
    key = _authorized_key(two_sites, cluster, token, "hpcuser1", "hpcuser2")
    for environment, login in (("hpc-a", "hpcuser1"), ("hpc-b", "hpcuser2")):
        saved = two_sites.waas(
            token, "environments", "set-identity", environment, "--login", login, "--key", key
        )
        assert saved.returncode == 0, saved.stderr
    run = two_sites.waas(token, "workflows", "trigger", "-f", "twosites@hpc-a@exec_job")
    assert run.returncode == 0, run.stdout + run.stderr
    match = re.search(r"Workflow triggered with execution ID: (\S+)", run.stdout)
    assert match, run.stdout
    execution_id = match.group(1)
    home1, home2 = (pwd.getpwnam(u).pw_dir for u in ("hpcuser1", "hpcuser2"))
    logs = two_sites.waas(token, "executions", "logs", execution_id).stdout
    assert f"first ran as hpcuser1 in {home1}/.hpcwaas/executions/{execution_id}" in logs
    assert f"second ran as hpcuser2 in {home2}/site-b/executions/{execution_id}" in logs
    # each account's directory holds its own step's job output, and only that one
    first_dir = Path(home1, ".hpcwaas", "executions", execution_id)
    second_dir = Path(home2, "site-b", "executions", execution_id)
    assert sorted(p.name for p in first_dir.glob(".hpcwaas-*.out")) == [
        ".hpcwaas-CountCluster1.out"
    ]
    assert sorted(p.name for p in second_dir.glob(".hpcwaas-*.out")) == [
        ".hpcwaas-CountCluster2.out"
    ]
    assert not Path(home2, ".hpcwaas", "executions", execution_id).exists()
    assert not Path(home1, "site-b", "executions", execution_id).exists()
    assert oct(os.stat(second_dir).st_mode & 0o777) == "0o700"
    assert os.stat(second_dir).st_uid == pwd.getpwnam("hpcuser2").pw_uid


def test_inputs_user_id_and_vault_id_apply_to_every_environment(
    two_sites: ClusterServer, cluster: Cluster
) -> None:
    token = two_sites.server.token("bob")
    key = _authorized_key(two_sites, cluster, token, "hpcuser1")
    run = two_sites.waas(
        token,
        "workflows",
        "trigger",
        "-f",
        "-i",
        "user_id=hpcuser1",
        "-i",
        f"vault_id={key}",
        "twosites@hpc-a@exec_job",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    execution_id = re.search(r"execution ID: (\S+)", run.stdout).group(1)  # type: ignore[union-attr]
    home = pwd.getpwnam("hpcuser1").pw_dir
    logs = two_sites.waas(token, "executions", "logs", execution_id).stdout
    assert f"first ran as hpcuser1 in {home}/.hpcwaas/executions/{execution_id}" in logs
    assert f"second ran as hpcuser1 in {home}/site-b/executions/{execution_id}" in logs


def test_a_step_on_the_second_environment_reads_the_outputs_of_one_on_the_first(
    two_sites: ClusterServer, cluster: Cluster
) -> None:
    token = two_sites.server.token("erin")
    key = _authorized_key(two_sites, cluster, token, "hpcuser1", "hpcuser2")
    for environment, login in (("hpc-a", "hpcuser1"), ("hpc-b", "hpcuser2")):
        saved = two_sites.waas(
            token, "environments", "set-identity", environment, "--login", login, "--key", key
        )
        assert saved.returncode == 0, saved.stderr
    with two_sites.server.client(token) as client:
        response = client.post("/workflows/handover@hpc-a@run", json={"inputs": {}})
        assert response.status_code == 201, response.text
        execution_id = response.headers["location"].rsplit("/", 1)[1]
        status = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=120)
    assert status["status"] == "SUCCEEDED", status
    home1, home2 = (pwd.getpwnam(u).pw_dir for u in ("hpcuser1", "hpcuser2"))
    first = f"hpcuser1:{home1}/.hpcwaas/executions/{execution_id}"
    second = f"hpcuser2:{home2}/site-b/executions/{execution_id}"
    # the workflow output is read from the place of the step that writes it (hpc-b)
    assert status["outputs"]["report"] == f"{first} then {second}\n"


def _trigger_long(
    setup: ClusterServer, cluster: Cluster, user: str, seconds: int
) -> tuple[str, str, str]:
    """Trigger with the second step sleeping ``seconds``; (token, execution ID, its job ID)."""
    token = setup.server.token(user)
    key = _authorized_key(setup, cluster, token, "hpcuser1", "hpcuser2")
    for environment, login in (("hpc-a", "hpcuser1"), ("hpc-b", "hpcuser2")):
        saved = setup.waas(
            token, "environments", "set-identity", environment, "--login", login, "--key", key
        )
        assert saved.returncode == 0, saved.stderr
    with setup.server.client(token) as client:
        response = client.post(
            "/workflows/twosites@hpc-a@exec_job", json={"inputs": {"seconds": seconds}}
        )
        assert response.status_code == 201, response.text
        execution_id = response.headers["location"].rsplit("/", 1)[1]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            steps = {
                s["name"]: s for s in client.get(f"/executions/{execution_id}").json()["steps"]
            }
            if steps["CountCluster2"].get("job_id"):
                return token, execution_id, str(steps["CountCluster2"]["job_id"])
            time.sleep(0.3)
    raise AssertionError("the step on hpc-b was never submitted")


def test_cancel_scancels_the_job_of_a_step_on_the_second_environment(
    two_sites: ClusterServer, cluster: Cluster
) -> None:
    token, execution_id, job_id = _trigger_long(two_sites, cluster, "carol", 300)
    cluster.wait_job_state(job_id, {"RUNNING"})
    assert "UserId=hpcuser2(" in cluster.scontrol(job_id)
    with two_sites.server.client(token) as client:
        assert client.delete(f"/executions/{execution_id}").status_code == 202
        body = wait_for_status(client, execution_id, {"CANCELLED", "FAILED"}, timeout=30)
    assert body["status"] == "CANCELLED"
    assert cluster.wait_job_state(job_id, {"CANCELLED"}, timeout=10) == "CANCELLED"


def test_a_killed_server_follows_the_job_on_the_second_environment_after_a_restart(
    two_sites: ClusterServer, cluster: Cluster
) -> None:
    token, execution_id, job_id = _trigger_long(two_sites, cluster, "dave", 8)
    process = two_sites.server.process
    assert process is not None
    process.send_signal(signal.SIGKILL)
    process.wait()
    two_sites.server.start()
    with two_sites.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=120)
        logs = client.get(f"/executions/{execution_id}/logs").json()["logs"]
    assert body["status"] == "SUCCEEDED", body
    steps = {s["name"]: s for s in body["steps"]}
    assert steps["CountCluster2"]["job_id"] == job_id  # followed, not submitted again
    assert any(e["content"] == "second finished" for e in logs), logs


def _trigger_from_here(setup: ClusterServer, cluster: Cluster, user: str) -> tuple[str, str, str]:
    """Trigger ``fromhere``; (token, execution ID, the job ID of its step on hpc-a)."""
    token = setup.server.token(user)
    key = _authorized_key(setup, cluster, token, "hpcuser1")
    inputs = {"user_id": "hpcuser1", "vault_id": key}
    with setup.server.client(token) as client:
        response = client.post("/workflows/fromhere@local@run", json={"inputs": inputs})
        assert response.status_code == 201, response.text
        execution_id = response.headers["location"].rsplit("/", 1)[1]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job_id = client.get(f"/executions/{execution_id}").json()["steps"][0].get("job_id")
            if job_id:
                cluster.wait_job_state(job_id, {"RUNNING"})
                return token, execution_id, str(job_id)
            time.sleep(0.3)
    raise AssertionError("the step on hpc-a was never submitted")


def test_a_stop_of_the_server_cancels_the_cluster_job_of_an_execution_on_the_local_environment(
    two_sites: ClusterServer, cluster: Cluster
) -> None:
    token, execution_id, job_id = _trigger_from_here(two_sites, cluster, "frank")
    two_sites.server.stop()  # SIGTERM: a local execution does not outlive its server
    assert cluster.wait_job_state(job_id, {"CANCELLED"}, timeout=30) == "CANCELLED"
    two_sites.server.start()
    with two_sites.server.client(token) as client:
        body = client.get(f"/executions/{execution_id}").json()
    assert body["status"] == "FAILED", body


def test_after_a_crash_the_next_start_cancels_the_cluster_job_of_a_local_execution(
    two_sites: ClusterServer, cluster: Cluster
) -> None:
    token, execution_id, job_id = _trigger_from_here(two_sites, cluster, "grace")
    process = two_sites.server.process
    assert process is not None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert cluster.job_state(job_id) == "RUNNING"  # nobody told Slurm
    two_sites.server.start()
    assert cluster.wait_job_state(job_id, {"CANCELLED"}, timeout=30) == "CANCELLED"
    with two_sites.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"FAILED"}, timeout=30)
        logs = [e["content"] for e in client.get(f"/executions/{execution_id}/logs").json()["logs"]]
    assert body["status"] == "FAILED"
    assert f"Cancelled its job(s) {job_id} on hpc-a" in logs
